//! A small synchronous rtnetlink socket.
//!
//! Why our own and not `rtnetlink`: the CNI plugin is a one-shot process that
//! must start in about a millisecond, so no async runtime; and the
//! `netlink-packet-*` crates break their API often, so they stay behind this
//! module (docs/prior-art.md#netlink-socket, netavark commit 96993f4f).
//!
//! What it adds over netavark's socket (same section, "Gaps to fix"):
//! - every change request carries NLM_F_ACK and waits for the kernel's answer;
//! - dumps interrupted by a concurrent change (NLM_F_DUMP_INTR) are retried,
//!   like the Go reference's `pkg/netlinksafe`;
//! - extended acks (NETLINK_EXT_ACK) so the kernel's error text reaches the
//!   error message.
//!
//! One socket is opened per [`crate::Handle`] and reused for every request;
//! the receive buffer is allocated once.

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK,
    NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, SocketAddr};
use nix::errno::Errno;

use crate::error::ErrorKind;

/// Receive buffer size. The kernel caps a dump datagram at 32 KiB
/// (`netlink_dump`: `max_recvmsg_len` is clamped to 32768); twice that leaves
/// room for one oversized single message.
const RECV_BUF_LEN: usize = 64 * 1024;

/// How often a dump is repeated when the kernel flags it NLM_F_DUMP_INTR
/// (the table changed while it was being dumped). Same bound as the Go
/// reference (`containernetworking/plugins: pkg/netlinksafe/netlink.go`).
pub(crate) const DUMP_INTR_RETRIES: usize = 5;

/// `NLMSGERR_ATTR_MSG` (include/uapi/linux/netlink.h): the ext-ack text TLV.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;

pub(crate) struct Socket {
    sock: netlink_sys::Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Socket {
    /// Opens an rtnetlink socket in the calling thread's network namespace.
    /// The socket stays bound to that namespace for its whole life.
    pub(crate) fn open() -> std::io::Result<Self> {
        let sock = netlink_sys::Socket::new(NETLINK_ROUTE)?;
        // Connecting to the kernel (port 0) auto-binds us and makes the
        // socket ignore datagrams from anyone else.
        sock.connect(&SocketAddr::new(0, 0))?;
        // Strict checking makes the kernel honour the filters in dump
        // requests (ifindex for addresses and neighbours).
        sock.set_netlink_get_strict_chk(true)?;
        // Error replies carry only the request header, not the whole request,
        // plus the kernel's error text.
        sock.set_cap_ack(true)?;
        sock.set_ext_ack(true)?;
        Ok(Self {
            sock,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF_LEN),
        })
    }

    /// Sends one change or get request with NLM_F_ACK and returns the
    /// messages the kernel sent before its ACK (for example the echoed link
    /// with NLM_F_ECHO, or the answer of a GET).
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, ErrorKind> {
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_ACK | flags)?;
        self.receive(seq, Terminator::Ack)
            .map(|(replies, _)| replies)
    }

    /// Dumps a table. Retries when the dump was interrupted by a concurrent
    /// change, so the caller never sees a half-old, half-new table.
    pub(crate) fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, ErrorKind> {
        for _ in 0..DUMP_INTR_RETRIES {
            let seq = self.send(msg.clone(), NLM_F_REQUEST | NLM_F_DUMP)?;
            let (replies, interrupted) = self.receive(seq, Terminator::Done)?;
            if !interrupted {
                return Ok(replies);
            }
            tracing::debug!("netlink dump interrupted (NLM_F_DUMP_INTR), retrying");
        }
        Err(ErrorKind::Protocol(format!(
            "dump still interrupted (NLM_F_DUMP_INTR) after {DUMP_INTR_RETRIES} attempts"
        )))
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, ErrorKind> {
        self.seq = self.seq.wrapping_add(1);
        let bytes = encode(msg, flags, self.seq);
        let sent = self.sock.send(&bytes, 0)?;
        if sent != bytes.len() {
            return Err(ErrorKind::Protocol(format!(
                "short send: {sent} of {} bytes",
                bytes.len()
            )));
        }
        Ok(self.seq)
    }

    /// Reads datagrams until the terminator of request `seq` arrives.
    /// Returns the inner messages and whether any carried NLM_F_DUMP_INTR.
    fn receive(
        &mut self,
        seq: u32,
        until: Terminator,
    ) -> Result<(Vec<RouteNetlinkMessage>, bool), ErrorKind> {
        let mut replies = Vec::new();
        let mut interrupted = false;
        loop {
            self.buf.clear();
            let len = self.sock.recv(&mut self.buf, libc::MSG_TRUNC)?;
            if len > self.buf.len() {
                return Err(ErrorKind::Protocol(format!(
                    "datagram of {len} bytes truncated to {}",
                    self.buf.len()
                )));
            }
            for frame in split_datagram(&self.buf)? {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame)
                    .map_err(|e| ErrorKind::Decode(e.to_string()))?;
                // Replies to an earlier request that was abandoned (only
                // possible after an error mid-dump) are skipped.
                if msg.header.sequence_number != seq {
                    continue;
                }
                let flags = msg.header.flags;
                match msg.payload {
                    NetlinkPayload::InnerMessage(inner) => {
                        interrupted |= flags & NLM_F_DUMP_INTR != 0;
                        replies.push(inner);
                    }
                    NetlinkPayload::Error(err) => match err.code {
                        None => return Ok((replies, interrupted)),
                        Some(code) => {
                            return Err(ErrorKind::Kernel {
                                errno: Errno::from_raw(code.get().abs()),
                                ext_ack: ext_ack_message(flags, &err.header),
                            })
                        }
                    },
                    NetlinkPayload::Done(done) => {
                        // A dump that fails in its callback (e.g. a filter the
                        // kernel rejects) ends with NLMSG_DONE carrying the
                        // errno, and the ext-ack TLVs right after it.
                        if done.code != 0 {
                            return Err(ErrorKind::Kernel {
                                errno: Errno::from_raw(done.code.abs()),
                                ext_ack: (flags & NLM_F_ACK_TLVS != 0)
                                    .then(|| ext_ack_text(&done.extended_ack))
                                    .flatten(),
                            });
                        }
                        interrupted |= flags & NLM_F_DUMP_INTR != 0;
                        if until == Terminator::Done {
                            return Ok((replies, interrupted));
                        }
                    }
                    NetlinkPayload::Noop => {}
                    NetlinkPayload::Overrun(_) => {
                        return Err(ErrorKind::Protocol("NLMSG_OVERRUN".into()))
                    }
                    _ => return Err(ErrorKind::Protocol("unknown netlink payload".into())),
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Terminator {
    /// A change or GET request: ends with NLMSG_ERROR (code 0 = ACK).
    Ack,
    /// A dump: ends with NLMSG_DONE.
    Done,
}

/// Serializes one request.
pub(crate) fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let mut bytes = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut bytes);
    bytes
}

/// Splits a datagram into its netlink messages (each `nlmsg_len` long,
/// 4-byte aligned).
pub(crate) fn split_datagram(mut data: &[u8]) -> Result<Vec<&[u8]>, ErrorKind> {
    let mut frames = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let buffer =
            NetlinkBuffer::new_checked(data).map_err(|e| ErrorKind::Decode(e.to_string()))?;
        let len = buffer.length() as usize;
        if len < NLMSG_HDRLEN {
            return Err(ErrorKind::Decode(format!(
                "nlmsg_len {len} below header size"
            )));
        }
        frames.push(&data[..len]);
        data = data.get(align4(len)..).unwrap_or_default();
    }
    Ok(frames)
}

fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// Extracts the kernel's error text from an NLMSG_ERROR payload (after the
/// errno): the original request header (the whole request unless
/// NLM_F_CAPPED) followed by ext-ack TLVs when NLM_F_ACK_TLVS is set.
pub(crate) fn ext_ack_message(flags: u16, payload: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let orig_len = if flags & NLM_F_CAPPED != 0 {
        NLMSG_HDRLEN
    } else {
        u32::from_ne_bytes(payload.get(..4)?.try_into().ok()?) as usize
    };
    ext_ack_text(payload.get(align4(orig_len)..)?)
}

/// The `NLMSGERR_ATTR_MSG` text among ext-ack TLVs.
fn ext_ack_text(tlvs: &[u8]) -> Option<String> {
    NlasIterator::new(tlvs).flatten().find_map(|nla| {
        (nla.kind() == NLMSGERR_ATTR_MSG).then(|| {
            String::from_utf8_lossy(nla.value())
                .trim_end_matches('\0')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};

    fn getlink(name: &str) -> RouteNetlinkMessage {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.into()));
        RouteNetlinkMessage::GetLink(msg)
    }

    #[test]
    fn encoded_request_round_trips() {
        let bytes = encode(getlink("aksnt0"), NLM_F_REQUEST | NLM_F_ACK, 7);
        assert_eq!(bytes.len() % 4, 0);
        let frames = split_datagram(&bytes).unwrap();
        assert_eq!(frames.len(), 1);
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(frames[0]).unwrap();
        assert_eq!(back.header.sequence_number, 7);
        assert_eq!(back.header.flags, NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(
            back.payload,
            NetlinkPayload::InnerMessage(getlink("aksnt0"))
        );
    }

    #[test]
    fn datagram_with_several_messages_splits_on_aligned_lengths() {
        // "aksnt01" makes an unaligned attribute; the encoder pads it.
        let mut data = encode(getlink("aksnt01"), NLM_F_REQUEST, 1);
        data.extend(encode(getlink("b"), NLM_F_REQUEST, 2));
        let frames = split_datagram(&data).unwrap();
        assert_eq!(frames.len(), 2);
        let second = NetlinkMessage::<RouteNetlinkMessage>::deserialize(frames[1]).unwrap();
        assert_eq!(second.header.sequence_number, 2);
    }

    #[test]
    fn truncated_datagram_is_a_decode_error() {
        let data = encode(getlink("aksnt0"), NLM_F_REQUEST, 1);
        assert!(split_datagram(&data[..data.len() - 4]).is_err());
    }

    #[test]
    fn ext_ack_text_is_found_after_capped_header() {
        let mut payload = vec![0u8; NLMSG_HDRLEN];
        let text = b"Nexthop has invalid gateway\0";
        let nla_len = (4 + text.len()) as u16;
        payload.extend(nla_len.to_ne_bytes());
        payload.extend(NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend(text);
        while !payload.len().is_multiple_of(4) {
            payload.push(0);
        }
        assert_eq!(
            ext_ack_message(NLM_F_CAPPED | NLM_F_ACK_TLVS, &payload).as_deref(),
            Some("Nexthop has invalid gateway")
        );
        assert_eq!(ext_ack_message(NLM_F_CAPPED, &payload), None);
        assert_eq!(
            ext_ack_message(NLM_F_ACK_TLVS | NLM_F_CAPPED, &payload[..8]),
            None
        );
    }
}
