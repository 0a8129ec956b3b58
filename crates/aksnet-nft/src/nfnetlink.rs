//! Element batches sent to nf_tables over netlink, without the `nft` binary
//! (docs/policy.md "Incremental updates").
//!
//! Why: `nft -f` for a pod change of four elements costs a process start plus nft's cache
//! fetch (every table, chain and set of the ruleset) before it sends its batch; the batch
//! itself is a few hundred bytes. Here the same batch goes straight to the kernel.
//!
//! The messages are those `nft` sends for `add element` / `delete element` (libnftnl
//! `src/set_elem.c`, kernel `include/uapi/linux/netfilter/nf_tables.h`): one
//! `NFT_MSG_NEWSETELEM` or `NFT_MSG_DELSETELEM` per set and direction, framed by
//! `NFNL_MSG_BATCH_BEGIN` / `NFNL_MSG_BATCH_END` (`include/uapi/linux/netfilter/nfnetlink.h`).
//! The kernel applies a batch as ONE transaction and only when it ends with BATCH_END
//! (`nfnetlink_rcv_batch` aborts a batch without it), and the whole batch goes in one
//! `sendmsg`: a caller killed before that call changed nothing, after it the kernel has the
//! whole batch. Old table or new, never half (crates/aksnet/tests/agent_policy_kill.rs).
//!
//! Key layout: each field of a concatenation takes whole 32-bit registers (nft's
//! `netlink_padded_len`): `ipv4_addr . inet_proto . inet_service` is 4 + 4 (protocol byte,
//! 3 zero bytes) + 4 (port in network order, 2 zero bytes) = 12 bytes; IPv6: 24.

use std::net::IpAddr;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use crate::elements::{ElemOp, ElementBatch};
use crate::error::NftError;
use crate::filter::Elem;
use crate::model::Family;

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;
/// `enum nft_verdicts`: NFT_JUMP = -3.
const NFT_JUMP: i32 = -3;

/// Elements per message: the element list is one attribute, whose length is 16 bits.
const ELEMS_PER_MSG: usize = 256;
/// Larger batches go through `nft -f` (the socket's default send buffer is ~208 KiB).
pub const MAX_BATCH_BYTES: usize = 128 * 1024;

fn nfproto(f: Family) -> u8 {
    match f {
        Family::Inet => 1,
        Family::Ip => 2,
        Family::Ip6 => 10,
    }
}

/// A netlink buffer under construction.
struct Buf {
    b: Vec<u8>,
    seq: u32,
    /// Sequence numbers of the messages that ask for an acknowledgement.
    acked: Vec<u32>,
}

impl Buf {
    fn align(&mut self) {
        while !self.b.len().is_multiple_of(4) {
            self.b.push(0);
        }
    }

    /// Starts a message (header + `struct nfgenmsg`); returns its offset.
    fn begin(&mut self, ty: u16, flags: u16, family: u8, res_id: u16) -> usize {
        let at = self.b.len();
        self.seq += 1;
        self.b.extend_from_slice(&0u32.to_ne_bytes());
        self.b.extend_from_slice(&ty.to_ne_bytes());
        self.b.extend_from_slice(&flags.to_ne_bytes());
        self.b.extend_from_slice(&self.seq.to_ne_bytes());
        self.b.extend_from_slice(&0u32.to_ne_bytes());
        self.b.extend_from_slice(&[family, 0]);
        self.b.extend_from_slice(&res_id.to_be_bytes());
        if flags & NLM_F_ACK != 0 {
            self.acked.push(self.seq);
        }
        at
    }

    fn end(&mut self, at: usize) {
        self.align();
        let len = (self.b.len() - at) as u32;
        self.b[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    }

    fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.b.extend_from_slice(&len.to_ne_bytes());
        self.b.extend_from_slice(&ty.to_ne_bytes());
        self.b.extend_from_slice(data);
        self.align();
    }

    fn str_attr(&mut self, ty: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(ty, &v);
    }

    fn nest(&mut self, ty: u16) -> usize {
        let at = self.b.len();
        self.b.extend_from_slice(&[0, 0]);
        self.b.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    fn nest_end(&mut self, at: usize) {
        let len = (self.b.len() - at) as u16;
        self.b[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn key(&mut self, key: &[u8]) {
        let k = self.nest(NFTA_SET_ELEM_KEY);
        self.attr(NFTA_DATA_VALUE, key);
        self.nest_end(k);
    }
}

fn addr_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The key bytes of a set element (a host address, or address . protocol . port).
fn elem_key(e: &Elem) -> Vec<u8> {
    match e {
        Elem::Net(n) => addr_bytes(&n.addr()),
        Elem::AddrProtoPort(ip, proto, port) => {
            let mut k = addr_bytes(ip);
            k.extend_from_slice(&[*proto, 0, 0, 0]);
            k.extend_from_slice(&port.to_be_bytes());
            k.extend_from_slice(&[0, 0]);
            k
        }
    }
}

/// One NEWSETELEM/DELSETELEM message per chunk of an op.
fn encode_op(buf: &mut Buf, family: u8, table: &str, op: &ElemOp) {
    let (name, add) = match op {
        ElemOp::Set { set, add, .. } => (set, *add),
        ElemOp::Map { map, add, .. } => (map, *add),
    };
    let (ty, flags) = match add {
        true => (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK),
        false => (NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK),
    };
    let items: Vec<(Vec<u8>, Option<&str>)> = match op {
        ElemOp::Set { elems, .. } => elems.iter().map(|e| (elem_key(e), None)).collect(),
        ElemOp::Map { entries, .. } => entries
            .iter()
            .map(|(k, c)| (addr_bytes(k), add.then_some(c.as_str())))
            .collect(),
    };
    for chunk in items.chunks(ELEMS_PER_MSG) {
        let at = buf.begin((NFNL_SUBSYS_NFTABLES << 8) | ty, flags, family, 0);
        buf.str_attr(NFTA_SET_ELEM_LIST_TABLE, table);
        buf.str_attr(NFTA_SET_ELEM_LIST_SET, name);
        let list = buf.nest(NFTA_SET_ELEM_LIST_ELEMENTS);
        for (key, chain) in chunk {
            let el = buf.nest(NFTA_LIST_ELEM);
            buf.key(key);
            if let Some(chain) = chain {
                let data = buf.nest(NFTA_SET_ELEM_DATA);
                let v = buf.nest(NFTA_DATA_VERDICT);
                buf.attr(NFTA_VERDICT_CODE, &NFT_JUMP.to_be_bytes());
                buf.str_attr(NFTA_VERDICT_CHAIN, chain);
                buf.nest_end(v);
                buf.nest_end(data);
            }
            buf.nest_end(el);
        }
        buf.nest_end(list);
        buf.end(at);
    }
}

/// The whole batch (BEGIN, the element messages, END) and the sequence numbers to be acked.
fn encode(batch: &ElementBatch, first_seq: u32) -> (Vec<u8>, Vec<u32>) {
    let mut buf = Buf {
        b: Vec::with_capacity(1024),
        seq: first_seq,
        acked: Vec::new(),
    };
    let at = buf.begin(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
    buf.end(at);
    let family = nfproto(batch.family);
    for op in &batch.ops {
        encode_op(&mut buf, family, &batch.table, op);
    }
    let at = buf.begin(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, NFNL_SUBSYS_NFTABLES);
    buf.end(at);
    (buf.b, buf.acked)
}

fn io_err(op: &str, source: std::io::Error) -> NftError {
    NftError::Netlink {
        op: op.to_string(),
        source,
    }
}

/// A netlink socket kept open per thread, with the network namespace it belongs to and the
/// last sequence number used on it.
///
/// Why not one socket per batch: closing an nfnetlink socket makes nf_tables wait for the
/// release of the previous transactions, i.e. an RCU grace period (`nft_rcv_nl_event` on
/// NETLINK_URELEASE calls `nf_tables_trans_destroy_flush_work`, net/netfilter/
/// nf_tables_api.c): measured here 4–9 ms of sleep after a batch that deletes elements,
/// for 0.15 ms of CPU. A socket kept open leaves that work to the kernel's worker.
struct Cached {
    netns: (u64, u64),
    sock: Socket,
    seq: u32,
}

thread_local! {
    static SOCKET: std::cell::RefCell<Option<Cached>> = const { std::cell::RefCell::new(None) };
}

/// The calling thread's network namespace (device and inode of its nsfs file).
fn current_netns() -> std::io::Result<(u64, u64)> {
    use std::os::linux::fs::MetadataExt;
    let m = std::fs::metadata("/proc/thread-self/ns/net")?;
    Ok((m.st_dev(), m.st_ino()))
}

fn open_socket() -> std::io::Result<Socket> {
    let sock = Socket::new(NETLINK_NETFILTER)?;
    sock.connect(&SocketAddr::new(0, 0))?;
    // Errors then carry only the header of the refused message, not the message.
    sock.set_cap_ack(true)?;
    Ok(sock)
}

/// Sends the batch as ONE transaction in the calling thread's network namespace and waits
/// for the kernel's answer to every message; the first error refuses the whole batch.
/// `Ok(false)`: larger than [`MAX_BATCH_BYTES`], nothing sent.
pub fn send_batch(op: &str, batch: &ElementBatch) -> Result<bool, NftError> {
    let netns = current_netns().map_err(|e| io_err(op, e))?;
    SOCKET.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|c| c.netns != netns) {
            let sock = open_socket().map_err(|e| io_err(op, e))?;
            *slot = Some(Cached {
                netns,
                sock,
                seq: 0,
            });
        }
        let Some(cached) = slot.as_mut() else {
            return Err(io_err(op, std::io::Error::other("no netlink socket")));
        };
        let sent = send_on(op, cached, batch);
        if sent.is_err() {
            // A socket left with unread answers is not reused.
            *slot = None;
        }
        sent
    })
}

fn send_on(op: &str, c: &mut Cached, batch: &ElementBatch) -> Result<bool, NftError> {
    let (bytes, mut pending) = encode(batch, c.seq);
    if bytes.len() > MAX_BATCH_BYTES {
        return Ok(false);
    }
    c.seq = c.seq.wrapping_add(pending.len() as u32 + 2);
    let sent = c.sock.send(&bytes, 0).map_err(|e| io_err(op, e))?;
    if sent != bytes.len() {
        return Err(io_err(
            op,
            std::io::Error::other(format!("sent {sent} of {} bytes", bytes.len())),
        ));
    }
    // The kernel handles a batch inside `sendmsg` and queues its answers before returning;
    // reading without blocking finds them all (as libmnl's batch loop in nft does).
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    while !pending.is_empty() {
        buf.clear();
        let n = c
            .sock
            .recv(&mut buf, libc::MSG_DONTWAIT)
            .map_err(|e| io_err(op, e))?;
        read_acks(op, &buf[..n.min(buf.len())], &mut pending)?;
    }
    Ok(true)
}

impl crate::backend::NftCommand {
    /// An element-only change as ONE transaction: straight over netlink (no `nft` process,
    /// no cache fetch), or through `nft -f` with the whole script in place
    /// ([`crate::backend::NftCommand::run_script_whole`]) when the batch is large.
    pub fn apply_elements(&self, op: &str, batch: &ElementBatch) -> Result<(), NftError> {
        tracing::debug!(%op, ops = batch.len(), "nf_tables element batch");
        if send_batch(op, batch)? {
            return Ok(());
        }
        self.run_script_whole(op, &batch.script())
    }
}

/// Checks the acknowledgements in one datagram, striking off the messages they answer.
fn read_acks(op: &str, mut data: &[u8], pending: &mut Vec<u32>) -> Result<(), NftError> {
    let u32_at = |d: &[u8], i: usize| -> Option<u32> {
        d.get(i..i + 4)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_ne_bytes)
    };
    while data.len() >= NLMSG_HDRLEN {
        let len = u32_at(data, 0).unwrap_or(0) as usize;
        let ty = data
            .get(4..6)
            .map_or(0, |s| u16::from_ne_bytes([s[0], s[1]]));
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(io_err(op, std::io::Error::other("malformed netlink reply")));
        }
        if ty == NLMSG_ERROR {
            // struct nlmsgerr: int error; struct nlmsghdr msg (the refused request's header).
            let errno = u32_at(data, NLMSG_HDRLEN).map_or(0, |v| v as i32);
            let seq = u32_at(data, NLMSG_HDRLEN + 4 + 8).unwrap_or(0);
            if errno != 0 {
                return Err(io_err(op, std::io::Error::from_raw_os_error(-errno)));
            }
            pending.retain(|s| *s != seq);
        }
        data = data.get(len.next_multiple_of(4)..).unwrap_or(&[]);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::filter::KeyType;

    #[test]
    fn concatenated_key_takes_whole_registers() {
        let k = elem_key(&Elem::AddrProtoPort("10.0.0.1".parse().unwrap(), 6, 8080));
        assert_eq!(k, vec![10, 0, 0, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
    }

    #[test]
    fn batch_is_framed_and_acks_every_element_message() {
        let batch = ElementBatch {
            family: Family::Inet,
            table: "t".into(),
            ops: vec![ElemOp::Map {
                map: "in-4".into(),
                key: KeyType::Ipv4,
                add: true,
                entries: vec![("10.0.0.1".parse().unwrap(), "gin-1".into())],
            }],
        };
        let (bytes, acked) = encode(&batch, 0);
        assert_eq!(acked, vec![2]);
        // BEGIN (20 bytes), then the element message, then END (20 bytes).
        assert_eq!(
            u16::from_ne_bytes([bytes[4], bytes[5]]),
            NFNL_MSG_BATCH_BEGIN
        );
        let end = &bytes[bytes.len() - 20..];
        assert_eq!(u16::from_ne_bytes([end[4], end[5]]), NFNL_MSG_BATCH_END);
        assert_eq!(
            u16::from_ne_bytes([bytes[24], bytes[25]]),
            (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM
        );
    }
}
