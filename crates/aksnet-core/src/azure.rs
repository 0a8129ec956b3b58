//! Azure subnet arithmetic: reserved addresses and per-node up-front reservation.
