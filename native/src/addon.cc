// latscope_bpf: a thin N-API layer over libbpf.
//
// It opens, configures and loads BPF objects, attaches their programs, reads and writes their
// maps and drains their ring buffers into caller-owned batch buffers. Policy (what to attach
// where, how to name and explain errors, when to drain) lives in the TypeScript facade
// native/addon.ts, which is the only place that loads this file.
//
// Every failure throws an Error carrying errno, code (e.g. "EPERM"), step (what was being done)
// and libbpfLog (everything libbpf printed during that step, which includes the verifier log).
// Attachments are BPF links wherever the kernel has them, so the kernel removes them when the
// process dies, even by SIGKILL; "legacy" netlink attachments (XDP, tc) are detached explicitly
// on close() and by the environment cleanup hook.
#include <napi.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

// Newer than Debian 12's uapi headers; values checked against the kernel's BTF.
#ifndef BPF_TCX_INGRESS
#define BPF_TCX_INGRESS 46
#define BPF_TCX_EGRESS 47
#endif

namespace {

// ---- libbpf output capture -------------------------------------------------------------------
// libbpf prints through one global callback; we keep what it said during the current step so
// that a failure can carry it (the verifier log included). Debug output is not kept.
thread_local std::string g_log;

int PrintToLog(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[4096];
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(buf, sizeof(buf), fmt, copy);
  va_end(copy);
  if (n < 0) return 0;
  if ((size_t)n < sizeof(buf)) {
    g_log.append(buf, n);
  } else {
    std::vector<char> big(n + 1);
    vsnprintf(big.data(), big.size(), fmt, args);
    g_log.append(big.data(), n);
  }
  if (g_log.size() > (8u << 20)) g_log.erase(0, g_log.size() - (8u << 20));
  return 0;
}

[[noreturn]] void ThrowBpf(Napi::Env env, const std::string& step, int err) {
  if (err < 0) err = -err;
  Napi::Error e = Napi::Error::New(env, step + ": " + strerror(err));
  const char* name = strerrorname_np(err);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, name ? name : "EUNKNOWN"));
  e.Set("step", Napi::String::New(env, step));
  e.Set("libbpfLog", Napi::String::New(env, g_log));
  g_log.clear();
  throw e;
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

int64_t ArgInt(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number");
  return info[i].As<Napi::Number>().Int64Value();
}

Napi::Buffer<uint8_t> ArgBuffer(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsBuffer())
    throw Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a Buffer");
  return info[i].As<Napi::Buffer<uint8_t>>();
}

// ---- ring buffer consumer ----------------------------------------------------------------------
// Our own consumer over the mmapped ring rather than ring_buffer__consume(): it can stop when the
// caller's batch buffer is full without losing the record it stopped at, and it never needs an
// epoll wake-up (producers use BPF_RB_NO_WAKEUP and we drain on a timer).
struct Ring {
  int mapFd = -1;
  size_t pageSize = 0;
  size_t dataSize = 0;
  void* consumer = MAP_FAILED;  // one page, read-write: consumer_pos
  void* producer = MAP_FAILED;  // one page + data mapped twice, read-only
  ~Ring() {
    if (consumer != MAP_FAILED) munmap(consumer, pageSize);
    if (producer != MAP_FAILED) munmap(producer, pageSize + 2 * dataSize);
  }
};

constexpr uint32_t kRingBusy = 1u << 31;
constexpr uint32_t kRingDiscard = 1u << 30;
constexpr uint32_t kRingHdr = 8;

// ---- attachments -------------------------------------------------------------------------------
struct Attachment {
  bpf_link* link = nullptr;     // kernel-owned lifetime: released with the fd
  int linkFd = -1;              // a link made with bpf_link_create() (XDP, tcx)
  int legacyXdpIfindex = 0;     // netlink XDP: must be detached by hand
  uint32_t legacyXdpFlags = 0;
  int legacyXdpProgId = 0;
  bool legacyTc = false;        // netlink tc filter: must be detached by hand
  bpf_tc_hook tcHook{};
  bpf_tc_opts tcOpts{};
  int cgroupFd = -1;
  int netnsFd = -1;             // netlink detaches must run in the namespace of the attach

  void Release() {
    int home = -1;
    if (netnsFd >= 0 && (legacyXdpIfindex || legacyTc)) {
      home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
      if (home >= 0 && setns(netnsFd, CLONE_NEWNET) != 0) {
        close(home);
        home = -1;
      }
    }
    if (link) {
      bpf_link__destroy(link);
      link = nullptr;
    }
    if (linkFd >= 0) {
      close(linkFd);
      linkFd = -1;
    }
    if (legacyXdpIfindex) {
      // Detach only if the attached program is still ours.
      __u32 cur = 0;
      if (bpf_xdp_query_id(legacyXdpIfindex, legacyXdpFlags, &cur) == 0 && (int)cur == legacyXdpProgId)
        bpf_xdp_detach(legacyXdpIfindex, legacyXdpFlags, nullptr);
      legacyXdpIfindex = 0;
    }
    if (legacyTc) {
      tcOpts.flags = tcOpts.prog_fd = tcOpts.prog_id = 0;
      bpf_tc_detach(&tcHook, &tcOpts);
      legacyTc = false;
    }
    if (cgroupFd >= 0) {
      close(cgroupFd);
      cgroupFd = -1;
    }
    if (home >= 0) {
      setns(home, CLONE_NEWNET);
      close(home);
    }
    if (netnsFd >= 0) {
      close(netnsFd);
      netnsFd = -1;
    }
  }
};

class BpfObject;
std::set<BpfObject*>* g_live = nullptr;  // per process; the addon is loaded once

// ---- BpfObject --------------------------------------------------------------------------------
class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "BpfObject",
                       {
                           InstanceMethod("datasecVars", &BpfObject::DatasecVars),
                           InstanceMethod("structLayout", &BpfObject::StructLayout),
                           InstanceMethod("initialValue", &BpfObject::InitialValue),
                           InstanceMethod("setInitialValue", &BpfObject::SetInitialValue),
                           InstanceMethod("programs", &BpfObject::Programs),
                           InstanceMethod("maps", &BpfObject::Maps),
                           InstanceMethod("setAutoload", &BpfObject::SetAutoload),
                           InstanceMethod("resizeMap", &BpfObject::ResizeMap),
                           InstanceMethod("load", &BpfObject::Load),
                           InstanceMethod("attach", &BpfObject::Attach),
                           InstanceMethod("detach", &BpfObject::Detach),
                           InstanceMethod("progInfo", &BpfObject::ProgInfo),
                           InstanceMethod("mapLookup", &BpfObject::MapLookup),
                           InstanceMethod("mapUpdate", &BpfObject::MapUpdate),
                           InstanceMethod("mapDelete", &BpfObject::MapDelete),
                           InstanceMethod("mapKeys", &BpfObject::MapKeys),
                           InstanceMethod("mapLookupAll", &BpfObject::MapLookupAll),
                           InstanceMethod("ringOpen", &BpfObject::RingOpen),
                           InstanceMethod("ringDrain", &BpfObject::RingDrain),
                           InstanceMethod("ringPending", &BpfObject::RingPending),
                           InstanceMethod("close", &BpfObject::Close),
                       });
  }

  BpfObject(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObject>(info) {
    std::string path = ArgString(info, 0);
    g_log.clear();
    obj_ = bpf_object__open_file(path.c_str(), nullptr);
    int err = libbpf_get_error(obj_);
    if (err) {
      obj_ = nullptr;
      ThrowBpf(info.Env(), "opening " + path, err);
    }
    g_live->insert(this);
  }

  ~BpfObject() override { Release(); }

  void Release() {
    for (auto& a : attachments_)
      if (a) a->Release();
    attachments_.clear();
    rings_.clear();
    if (obj_) {
      bpf_object__close(obj_);
      obj_ = nullptr;
    }
    if (g_live) g_live->erase(this);
  }

 private:
  bpf_object* obj_ = nullptr;
  bool loaded_ = false;
  std::vector<std::unique_ptr<Attachment>> attachments_;  // index = attachment id
  std::vector<std::unique_ptr<Ring>> rings_;

  bpf_object* Obj(Napi::Env env) {
    if (!obj_) throw Napi::Error::New(env, "BPF object is closed");
    return obj_;
  }
  bpf_program* Prog(Napi::Env env, const std::string& name) {
    bpf_program* p = bpf_object__find_program_by_name(Obj(env), name.c_str());
    if (!p) ThrowBpf(env, "finding program " + name, ENOENT);
    return p;
  }
  bpf_map* Map(Napi::Env env, const std::string& name) {
    bpf_map* m = bpf_object__find_map_by_name(Obj(env), name.c_str());
    if (!m) ThrowBpf(env, "finding map " + name, ENOENT);
    return m;
  }
  int MapFd(Napi::Env env, const std::string& name) {
    if (!loaded_) throw Napi::Error::New(env, "map " + name + ": object is not loaded yet");
    return bpf_map__fd(Map(env, name));
  }

  // Variables of a data section (".rodata", ".bss", ".data") from BTF: name, offset, size.
  Napi::Value DatasecVars(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string sec = ArgString(info, 0);
    Napi::Array out = Napi::Array::New(env);
    const btf* b = bpf_object__btf(Obj(env));
    if (!b) return out;
    int id = btf__find_by_name_kind(b, sec.c_str(), BTF_KIND_DATASEC);
    if (id < 0) return out;
    const btf_type* t = btf__type_by_id(b, id);
    const btf_var_secinfo* v = btf_var_secinfos(t);
    for (int i = 0; i < btf_vlen(t); i++, v++) {
      const btf_type* var = btf__type_by_id(b, v->type);
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", btf__name_by_offset(b, var->name_off));
      o.Set("offset", v->offset);
      o.Set("size", v->size);
      out.Set(i, o);
    }
    return out;
  }

  // A struct as the object's BTF has it: {size, fields: [{name, offset, size}]}, or null when the
  // object has no struct of that name. Bit fields are not used in shared structs.
  Napi::Value StructLayout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    const btf* b = bpf_object__btf(Obj(env));
    if (!b) return env.Null();
    int id = btf__find_by_name_kind(b, name.c_str(), BTF_KIND_STRUCT);
    if (id < 0) return env.Null();
    const btf_type* t = btf__type_by_id(b, id);
    Napi::Object out = Napi::Object::New(env);
    out.Set("size", t->size);
    Napi::Array fields = Napi::Array::New(env);
    const btf_member* m = btf_members(t);
    for (int i = 0; i < btf_vlen(t); i++, m++) {
      Napi::Object f = Napi::Object::New(env);
      f.Set("name", btf__name_by_offset(b, m->name_off));
      f.Set("offset", btf_member_bit_offset(t, i) / 8);
      f.Set("size", (double)btf__resolve_size(b, m->type));
      fields.Set(i, f);
    }
    out.Set("fields", fields);
    return out;
  }

  Napi::Value InitialValue(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t size = 0;
    const void* v = bpf_map__initial_value(Map(env, ArgString(info, 0)), &size);
    if (!v) return env.Null();
    return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(v), size);
  }

  Napi::Value SetInitialValue(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    auto buf = ArgBuffer(info, 1);
    g_log.clear();
    int err = bpf_map__set_initial_value(Map(env, name), buf.Data(), buf.Length());
    if (err) ThrowBpf(env, "setting initial value of " + name, err);
    return env.Undefined();
  }

  Napi::Value Programs(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    bpf_program* p;
    uint32_t i = 0;
    bpf_object__for_each_program(p, Obj(env)) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_program__name(p));
      o.Set("section", bpf_program__section_name(p));
      o.Set("type", libbpf_bpf_prog_type_str(bpf_program__type(p)));
      o.Set("autoload", bpf_program__autoload(p));
      o.Set("fd", loaded_ ? bpf_program__fd(p) : -1);
      out.Set(i++, o);
    }
    return out;
  }

  Napi::Value Maps(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    bpf_map* m;
    uint32_t i = 0;
    bpf_object__for_each_map(m, Obj(env)) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", bpf_map__name(m));
      o.Set("type", libbpf_bpf_map_type_str(bpf_map__type(m)));
      o.Set("keySize", bpf_map__key_size(m));
      o.Set("valueSize", bpf_map__value_size(m));
      o.Set("maxEntries", bpf_map__max_entries(m));
      o.Set("fd", loaded_ ? bpf_map__fd(m) : -1);
      out.Set(i++, o);
    }
    return out;
  }

  Napi::Value SetAutoload(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    int err = bpf_program__set_autoload(Prog(env, name), info[1].ToBoolean());
    if (err) ThrowBpf(env, "setting autoload of " + name, err);
    return env.Undefined();
  }

  Napi::Value ResizeMap(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    int err = bpf_map__set_max_entries(Map(env, name), (uint32_t)ArgInt(info, 1));
    if (err) ThrowBpf(env, "resizing map " + name, err);
    return env.Undefined();
  }

  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    g_log.clear();
    int err = bpf_object__load(Obj(env));
    if (err) ThrowBpf(env, std::string("loading ") + bpf_object__name(obj_), err);
    loaded_ = true;
    std::string log = g_log;
    g_log.clear();
    return Napi::String::New(env, log);
  }

  // attach(program, kind, options) -> attachment id.
  //   kind "auto":     the program's section says where (tp/, raw_tp/, tp_btf/, uprobe/ ...)
  //   kind "xdp":      { ifindex, flags, legacy }          flags are XDP_FLAGS_* (mode)
  //   kind "tc":       { ifindex, ingress, legacy }        tcx link, or netlink clsact filter
  //   kind "cgroup":   { path }                            cgroup_skb and sockops programs
  //   kind "tracepoint": { category, name }
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string progName = ArgString(info, 0);
    std::string kind = ArgString(info, 1);
    Napi::Object opt = info.Length() > 2 && info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
    if (!loaded_) throw Napi::Error::New(env, "attaching " + progName + ": object is not loaded yet");
    bpf_program* prog = Prog(env, progName);
    int progFd = bpf_program__fd(prog);
    auto a = std::make_unique<Attachment>();
    if (opt.Get("legacy").ToBoolean()) a->netnsFd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    g_log.clear();
    std::string step = "attaching " + progName;

    if (kind == "auto" || kind == "tracepoint") {
      bpf_link* l = kind == "auto" ? bpf_program__attach(prog)
                                   : bpf_program__attach_tracepoint(
                                         prog, opt.Get("category").ToString().Utf8Value().c_str(),
                                         opt.Get("name").ToString().Utf8Value().c_str());
      int err = libbpf_get_error(l);
      if (err) ThrowBpf(env, step, err);
      a->link = l;
    } else if (kind == "xdp") {
      int ifindex = opt.Get("ifindex").ToNumber().Int32Value();
      uint32_t flags = opt.Get("flags").ToNumber().Uint32Value();
      if (opt.Get("legacy").ToBoolean()) {
        int err = bpf_xdp_attach(ifindex, progFd, flags | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
        if (err) ThrowBpf(env, step + " (xdp, netlink)", err);
        bpf_prog_info pi{};
        uint32_t len = sizeof(pi);
        bpf_obj_get_info_by_fd(progFd, &pi, &len);
        a->legacyXdpIfindex = ifindex;
        a->legacyXdpFlags = flags;
        a->legacyXdpProgId = pi.id;
      } else {
        LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = flags);
        int fd = bpf_link_create(progFd, ifindex, BPF_XDP, &lo);
        if (fd < 0) ThrowBpf(env, step + " (xdp link)", fd);
        a->linkFd = fd;
      }
    } else if (kind == "tc") {
      int ifindex = opt.Get("ifindex").ToNumber().Int32Value();
      bool ingress = opt.Get("ingress").ToBoolean();
      if (opt.Get("legacy").ToBoolean()) {
        a->tcHook.sz = sizeof(bpf_tc_hook);
        a->tcHook.ifindex = ifindex;
        a->tcHook.attach_point = ingress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
        int err = bpf_tc_hook_create(&a->tcHook);
        if (err && err != -EEXIST) ThrowBpf(env, step + " (creating clsact)", err);
        a->tcOpts.sz = sizeof(bpf_tc_opts);
        a->tcOpts.prog_fd = progFd;
        a->tcOpts.handle = 1;
        a->tcOpts.priority = (uint32_t)opt.Get("priority").ToNumber().Uint32Value();  // the facade's
        if (!a->tcOpts.priority) throw Napi::TypeError::New(env, step + ": a legacy tc filter needs a priority");
        err = bpf_tc_attach(&a->tcHook, &a->tcOpts);
        if (err) ThrowBpf(env, step + " (tc, netlink)", err);
        a->legacyTc = true;
      } else {
        LIBBPF_OPTS(bpf_link_create_opts, lo);
        int fd = bpf_link_create(progFd, ifindex, (bpf_attach_type)(ingress ? BPF_TCX_INGRESS : BPF_TCX_EGRESS), &lo);
        if (fd < 0) ThrowBpf(env, step + " (tcx link)", fd);
        a->linkFd = fd;
      }
    } else if (kind == "cgroup") {
      std::string path = opt.Get("path").ToString().Utf8Value();
      int cg = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (cg < 0) ThrowBpf(env, step + ": opening cgroup " + path, errno);
      bpf_link* l = bpf_program__attach_cgroup(prog, cg);
      int err = libbpf_get_error(l);
      if (err) {
        close(cg);
        ThrowBpf(env, step + " to cgroup " + path, err);
      }
      a->link = l;
      a->cgroupFd = cg;
    } else {
      throw Napi::TypeError::New(env, "unknown attach kind " + kind);
    }
    attachments_.push_back(std::move(a));
    return Napi::Number::New(env, (double)(attachments_.size() - 1));
  }

  Napi::Value Detach(const Napi::CallbackInfo& info) {
    size_t id = (size_t)ArgInt(info, 0);
    if (id < attachments_.size() && attachments_[id]) {
      attachments_[id]->Release();
      attachments_[id].reset();
    }
    return info.Env().Undefined();
  }

  // Kernel-side facts about a loaded program: id, run count and run time (with bpf_stats on).
  Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    if (!loaded_) throw Napi::Error::New(env, "program " + name + ": object is not loaded yet");
    bpf_prog_info pi{};
    uint32_t len = sizeof(pi);
    int err = bpf_obj_get_info_by_fd(bpf_program__fd(Prog(env, name)), &pi, &len);
    if (err) ThrowBpf(env, "reading info of program " + name, errno);
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", pi.id);
    o.Set("runCount", Napi::BigInt::New(env, (uint64_t)pi.run_cnt));
    o.Set("runTimeNs", Napi::BigInt::New(env, (uint64_t)pi.run_time_ns));
    o.Set("verifiedInsns", pi.verified_insns);
    return o;
  }

  // Maps: keys and values are Buffers laid out as the C structs are; the facade sizes them
  // (per-CPU values are value_size rounded to 8, times the number of possible CPUs).
  Napi::Value MapLookup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    int fd = MapFd(env, name);
    auto key = ArgBuffer(info, 1);
    auto value = ArgBuffer(info, 2);
    if (bpf_map_lookup_elem(fd, key.Data(), value.Data()) == 0) return Napi::Boolean::New(env, true);
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowBpf(env, "looking up in map " + name, errno);
  }

  Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    int fd = MapFd(env, name);
    auto key = ArgBuffer(info, 1);
    auto value = ArgBuffer(info, 2);
    uint64_t flags = info.Length() > 3 ? (uint64_t)ArgInt(info, 3) : (uint64_t)BPF_ANY;
    if (bpf_map_update_elem(fd, key.Data(), value.Data(), flags)) ThrowBpf(env, "updating map " + name, errno);
    return env.Undefined();
  }

  Napi::Value MapDelete(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    int fd = MapFd(env, name);
    auto key = ArgBuffer(info, 1);
    if (bpf_map_delete_elem(fd, key.Data()) == 0) return Napi::Boolean::New(env, true);
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowBpf(env, "deleting from map " + name, errno);
  }

  // All keys, concatenated into one Buffer (keySize bytes each).
  Napi::Value MapKeys(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    int fd = MapFd(env, name);
    bpf_map* m = Map(env, name);
    size_t ks = bpf_map__key_size(m);
    std::vector<uint8_t> all;
    std::vector<uint8_t> cur(ks), next(ks);
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
      all.insert(all.end(), next.begin(), next.end());
      cur.swap(next);
      prev = cur.data();
      if (all.size() > (size_t)ks * bpf_map__max_entries(m) * 2) break;  // map changing under us
    }
    return Napi::Buffer<uint8_t>::Copy(env, all.data(), all.size());
  }

  // Entries of a map in a few syscalls (BPF_MAP_LOOKUP_BATCH), not one per entry: keys and
  // values go into the given Buffers (values sized as for mapLookup), as many entries as both
  // hold, from the start (or, for an array map, from index `start`); returns how many were read.
  Napi::Value MapLookupAll(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    int fd = MapFd(env, name);
    bpf_map* m = Map(env, name);
    auto keys = ArgBuffer(info, 1);
    auto values = ArgBuffer(info, 2);
    size_t ks = bpf_map__key_size(m), vs = (size_t)ArgInt(info, 3);
    size_t max = std::min((size_t)bpf_map__max_entries(m), std::min(keys.Length() / ks, vs ? values.Length() / vs : 0));
    uint32_t total = 0, in_batch = info.Length() > 4 ? (uint32_t)ArgInt(info, 4) : 0, out_batch = 0;
    void* in = in_batch ? &in_batch : nullptr;  // an array's batch position is the next index
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    while (total < max) {
      uint32_t count = (uint32_t)(max - total);
      int err = bpf_map_lookup_batch(fd, in, &out_batch, keys.Data() + total * ks, values.Data() + total * vs, &count, &opts);
      int e = errno;
      total += count;
      if (err) {
        if (e == ENOENT) break;  // no entries left
        ThrowBpf(env, "reading map " + name + " in batches", e);
      }
      in_batch = out_batch;
      in = &in_batch;
    }
    return Napi::Number::New(env, total);
  }

  Napi::Value RingOpen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string name = ArgString(info, 0);
    int fd = MapFd(env, name);
    auto r = std::make_unique<Ring>();
    r->mapFd = fd;
    r->pageSize = (size_t)sysconf(_SC_PAGESIZE);
    r->dataSize = bpf_map__max_entries(Map(env, name));
    r->consumer = mmap(nullptr, r->pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (r->consumer == MAP_FAILED) ThrowBpf(env, "mapping ring buffer " + name, errno);
    r->producer = mmap(nullptr, r->pageSize + 2 * r->dataSize, PROT_READ, MAP_SHARED, fd, r->pageSize);
    if (r->producer == MAP_FAILED) ThrowBpf(env, "mapping ring buffer " + name, errno);
    rings_.push_back(std::move(r));
    return Napi::Number::New(env, (double)(rings_.size() - 1));
  }

  // ringDrain(ring, batch, maxRecords) -> [records, bytesUsed]
  // Copies committed records into batch as [u32 length][u32 reserved][data, padded to 8] until
  // the ring is empty, the batch is full or maxRecords were taken. Records that do not fit stay
  // in the ring for the next call.
  Napi::Value RingDrain(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t id = (size_t)ArgInt(info, 0);
    if (id >= rings_.size() || !rings_[id]) throw Napi::Error::New(env, "no such ring");
    Ring& r = *rings_[id];
    auto batch = ArgBuffer(info, 1);
    uint64_t maxRecords = info.Length() > 2 ? (uint64_t)ArgInt(info, 2) : UINT64_MAX;
    uint8_t* out = batch.Data();
    size_t cap = batch.Length(), used = 0;
    uint64_t n = 0;
    auto* consPtr = static_cast<unsigned long*>(r.consumer);
    auto* prodPtr = static_cast<unsigned long*>(r.producer);
    uint8_t* data = static_cast<uint8_t*>(r.producer) + r.pageSize;
    unsigned long mask = r.dataSize - 1;
    unsigned long cons = __atomic_load_n(consPtr, __ATOMIC_ACQUIRE);
    unsigned long prod = __atomic_load_n(prodPtr, __ATOMIC_ACQUIRE);
    while (cons < prod && n < maxRecords) {
      uint32_t* hdr = reinterpret_cast<uint32_t*>(data + (cons & mask));
      uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
      if (len & kRingBusy) break;  // not committed yet
      uint32_t dataLen = len & ~(kRingBusy | kRingDiscard);
      unsigned long step = (dataLen + kRingHdr + 7) & ~7ul;
      if (!(len & kRingDiscard)) {
        size_t need = 8 + ((dataLen + 7) & ~7u);
        if (used + need > cap) break;  // batch full: leave it for the next call
        uint32_t h[2] = {dataLen, 0};
        memcpy(out + used, h, 8);
        memcpy(out + used + 8, reinterpret_cast<uint8_t*>(hdr) + kRingHdr, dataLen);
        used += need;
        n++;
      }
      cons += step;
      if (cons >= prod) prod = __atomic_load_n(prodPtr, __ATOMIC_ACQUIRE);
    }
    __atomic_store_n(consPtr, cons, __ATOMIC_RELEASE);
    Napi::Array res = Napi::Array::New(env, 2);
    res.Set(0u, Napi::Number::New(env, (double)n));
    res.Set(1u, Napi::Number::New(env, (double)used));
    return res;
  }

  // Bytes produced but not yet consumed.
  Napi::Value RingPending(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t id = (size_t)ArgInt(info, 0);
    if (id >= rings_.size() || !rings_[id]) throw Napi::Error::New(env, "no such ring");
    Ring& r = *rings_[id];
    unsigned long cons = __atomic_load_n(static_cast<unsigned long*>(r.consumer), __ATOMIC_ACQUIRE);
    unsigned long prod = __atomic_load_n(static_cast<unsigned long*>(r.producer), __ATOMIC_ACQUIRE);
    return Napi::Number::New(env, (double)(prod - cons));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }
};

// ---- module-level functions -------------------------------------------------------------------
Napi::Value IfIndex(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), if_nametoindex(ArgString(info, 0).c_str()));
}

// Enters the network namespace behind an open fd (for this thread; the caller switches back).
Napi::Value SetNetns(const Napi::CallbackInfo& info) {
  int fd = (int)ArgInt(info, 0);
  g_log.clear();
  if (setns(fd, CLONE_NEWNET)) ThrowBpf(info.Env(), "entering network namespace", errno);
  return info.Env().Undefined();
}

// Turns kernel-wide BPF run-time statistics on while the returned fd stays open.
Napi::Value EnableStats(const Napi::CallbackInfo& info) {
  g_log.clear();
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) ThrowBpf(info.Env(), "enabling bpf_stats", errno);
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  close((int)ArgInt(info, 0));
  return info.Env().Undefined();
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), libbpf_num_possible_cpus());
}

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), libbpf_version_string());
}

// Closes every object still open when the environment goes away (normal exit, worker end).
void CleanupAll(void*) {
  if (!g_live) return;
  auto copy = *g_live;
  for (BpfObject* o : copy) o->Release();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (!g_live) g_live = new std::set<BpfObject*>();
  libbpf_set_print(PrintToLog);
  libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
  napi_add_env_cleanup_hook(env, CleanupAll, nullptr);
  exports.Set("BpfObject", BpfObject::Init(env));
  exports.Set("ifIndex", Napi::Function::New(env, IfIndex));
  exports.Set("setNetns", Napi::Function::New(env, SetNetns));
  exports.Set("enableStats", Napi::Function::New(env, EnableStats));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus));
  exports.Set("libbpfVersion", Napi::Function::New(env, LibbpfVersion));
  return exports;
}

}  // namespace

NODE_API_MODULE(latscope_bpf, Init)
