//! Micro-benchmarks of address allocation (issue 7, item 2), at the two sizes
//! that matter: a node pool of 250 addresses (nodesubnet at maxPods 250, or a
//! kubenet /24) and a pool of 65,536 addresses (a /16 range).
//!
//! - `core_*`: the pure allocator (`aksnet_core::allocator::Allocator`): one
//!   ADD's allocate + one DEL's release, with the pool half full and with one
//!   address left (the allocator must find the last free one).
//! - `store_*`: one ADD's IPAM transaction through `aksnet_ipam::IpamStore` on
//!   a real file (flock, read, parse, allocate, render, write, fsync, rename,
//!   fsync the directory) with the pool half full; and `snapshot` (what DEL
//!   and CHECK read).
//!
//! Run: `cargo bench -p aksnet-ipam --bench allocator`. CI only compiles it.
//! Numbers from one run are in docs/benchmarks.md.

use std::net::{IpAddr, Ipv4Addr};

use aksnet_core::allocator::{AllocationMeta, Allocator, AttachmentKey, Pool, Range, ValidPool};
use aksnet_ipam::{IpamError, IpamStore};
use divan::Bencher;

fn main() {
    divan::main();
}

const SIZES: [usize; 2] = [250, 65_536];

/// A pool of `size` addresses: an address list for 250 (the nodesubnet shape),
/// a /16 range for 65,536 (65,534 usable hosts, host-local's rules).
fn pool(size: usize) -> ValidPool {
    let p = if size == 65_536 {
        Pool::Ranges(vec![vec![Range::subnet(
            "10.64.0.0/16".parse().expect("cidr"),
        )]])
    } else {
        let base = u32::from(Ipv4Addr::new(10, 98, 0, 5));
        Pool::Addresses {
            prefix: "10.98.0.0/22".parse().expect("cidr"),
            addrs: (0..size as u32)
                .map(|i| IpAddr::V4(Ipv4Addr::from(base + i)))
                .collect(),
        }
    };
    p.validate().expect("valid pool")
}

fn key(i: usize) -> AttachmentKey {
    AttachmentKey::new(format!("container-{i:08}"), "eth0")
}

fn meta() -> AllocationMeta {
    AllocationMeta {
        pod_namespace: Some("default".into()),
        pod_name: Some("pod".into()),
        created_unix: 1_764_000_000,
    }
}

/// An allocator holding `held` attachments of `pool`.
fn filled(pool: &ValidPool, held: usize) -> Allocator {
    let mut a = Allocator::new();
    for i in 0..held {
        a.allocate(pool, &key(i), &[], meta()).expect("fill");
    }
    a
}

fn capacity(pool: &ValidPool) -> usize {
    pool.capacity() as usize
}

/// One ADD + one DEL against a half-full pool.
#[divan::bench(args = SIZES)]
fn core_allocate_release_half_full(bencher: Bencher, size: usize) {
    let p = pool(size);
    let mut a = filled(&p, capacity(&p) / 2);
    let k = key(usize::MAX / 2);
    bencher.bench_local(|| {
        let leases = a.allocate(&p, &k, &[], meta()).expect("allocate");
        a.release(&k);
        leases
    });
}

/// One ADD + one DEL when a single address is free.
#[divan::bench(args = SIZES)]
fn core_allocate_release_last_free(bencher: Bencher, size: usize) {
    let p = pool(size);
    let mut a = filled(&p, capacity(&p) - 1);
    let k = key(usize::MAX / 2);
    bencher.bench_local(|| {
        let leases = a.allocate(&p, &k, &[], meta()).expect("allocate");
        a.release(&k);
        leases
    });
}

/// Filling the whole pool from empty (per benchmark iteration: `size` ADDs;
/// about 5 s at 65,536, hence only 3 samples).
#[divan::bench(args = SIZES, sample_count = 3, sample_size = 1)]
fn core_fill_whole_pool(bencher: Bencher, size: usize) {
    let p = pool(size);
    let cap = capacity(&p);
    bencher.bench_local(|| filled(&p, cap));
}

struct OnDisk {
    _dir: tempfile::TempDir,
    store: IpamStore,
    pool: ValidPool,
}

fn on_disk(size: usize) -> OnDisk {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = IpamStore::open(dir.path(), "bench").expect("open store");
    let pool = pool(size);
    let half = capacity(&pool) / 2;
    store
        .transact(|a| -> Result<(), IpamError> {
            for i in 0..half {
                a.allocate(&pool, &key(i), &[], meta())?;
            }
            Ok(())
        })
        .expect("fill on disk");
    OnDisk {
        _dir: dir,
        store,
        pool,
    }
}

/// One ADD's transaction plus one DEL's transaction on the state file, pool half full.
#[divan::bench(args = SIZES, sample_count = 20, sample_size = 1)]
fn store_allocate_release_half_full(bencher: Bencher, size: usize) {
    let d = on_disk(size);
    let k = key(usize::MAX / 2);
    bencher.bench_local(|| {
        d.store
            .transact(|a| -> Result<_, IpamError> { Ok(a.allocate(&d.pool, &k, &[], meta())?) })
            .expect("allocate");
        d.store
            .transact(|a| -> Result<_, IpamError> { Ok(a.release(&k)) })
            .expect("release")
    });
}

/// A shared-lock read of the state (DEL and CHECK), pool half full.
#[divan::bench(args = SIZES, sample_count = 20, sample_size = 1)]
fn store_snapshot_half_full(bencher: Bencher, size: usize) {
    let d = on_disk(size);
    bencher.bench_local(|| d.store.snapshot().expect("snapshot"));
}
