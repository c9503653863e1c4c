/**
 * A joined path's flags (the `flags` column of paths, and the analysis' PathColumns): what the
 * join found about a sender record and a receiver record of one sample.
 */

/** The sender retransmitted the sample (or the receiver's record marks it out of order). */
export const F_PATH_RETRANS = 1;
/** A negative wire delay beyond the clocks' bound: the clocks are wrong, not the packet. */
export const F_PATH_FAULT = 2;
/** Every segment has a value (so they add up to the end-to-end delay). */
export const F_PATH_COMPLETE = 4;
/** A server without a clock round: values across the two servers are left out. */
export const F_PATH_NO_FIT = 8;
