/* p2p.h: what ffcheck_p2p's two files (p2p.c, p2p_requests.c) share. */
#ifndef FFCHECK_P2P_H
#define FFCHECK_P2P_H

#include "ffcheck.h"

/* Sizes for the subtests that mix protocols: eager, around the limits, rendezvous, pipelined. */
extern const size_t mixed_sizes[];
extern const size_t n_mixed;
/* n, or --max-size if that is smaller. */
size_t clip(size_t n);
/* mixed_sizes[i % n_mixed], clipped. */
size_t mixed_size(size_t i);
size_t largest_mixed(void);

/* p2p_requests.c */
void test_storm_waitall(void);
void test_storm_waitany(void);
void test_storm_testsome(void);
void test_send_modes(void);
void test_sendrecv(void);

#endif
