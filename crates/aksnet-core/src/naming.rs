//! Interface names derived from pod identity, and the MTUs a pod interface may take.

/// The MTUs a pod's veth may be given: 68 is IPv4's minimum MTU (RFC 791), 65535 the
/// veth maximum. The plugin's `mtu` and `aksnet install --mtu` both check this range.
pub const POD_MTU: std::ops::RangeInclusive<u32> = 68..=65535;

/// Prefix of every host-side veth in `nodesubnet` mode (Azure transparent mode).
pub const AZURE_VETH_PREFIX: &str = "azv";

/// Host veth name in Azure's transparent mode: `azv` + the first 11 hex digits of
/// SHA-1("<k8s namespace>.<pod name>"), 14 characters (docs/azure.md#host-veth-naming,
/// `network/transparent_endpointclient_linux.go`; AKS FAQ example `azv79d05038592`).
pub fn azure_host_veth_name(pod_namespace: &str, pod_name: &str) -> String {
    host_veth_name_from_key(&format!("{pod_namespace}.{pod_name}"))
}

/// `azv` + 11 hex digits of SHA-1(key); used with the container ID when the runtime
/// gives no pod name (podman without Kubernetes, `ctr run --cni`).
pub fn host_veth_name_from_key(key: &str) -> String {
    prefixed_sha1_hex(AZURE_VETH_PREFIX, key.as_bytes(), 11)
}

/// `prefix` + the first `digits` (at most 40) lower-case hex digits of SHA-1(`text`).
/// Written digit by digit: DEL names the host veth of every attachment on the node
/// to find who else uses a name, and formatting the whole digest through `fmt` cost
/// more than hashing it.
fn prefixed_sha1_hex(prefix: &str, text: &[u8], digits: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha1_smol::Sha1::from(text).digest().bytes();
    let mut out = String::with_capacity(prefix.len() + digits);
    out.push_str(prefix);
    for i in 0..digits.min(2 * digest.len()) {
        let byte = digest[i / 2];
        let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0f };
        out.push(char::from(HEX[usize::from(nibble)]));
    }
    out
}

/// Host veth name in `nodesubnet` mode for a pod's interface other than
/// `eth0`. The hashed text holds NULs, which no environment value can
/// contain, so it never equals the `"<namespace>.<pod>"` text of
/// [`azure_host_veth_name`] nor the text of [`container_host_veth_name`]
/// (issue 10, item 3).
pub fn pod_interface_host_veth_name(pod_namespace: &str, pod_name: &str, ifname: &str) -> String {
    host_veth_name_from_key(&format!("pod\0{pod_namespace}\0{pod_name}\0{ifname}"))
}

/// Host veth name in `nodesubnet` mode for a container the runtime names by
/// ID only (podman, `ctr run --cni`): a container whose ID is another pod's
/// `namespace.name` cannot take that pod's name (issue 10, item 3).
pub fn container_host_veth_name(container_id: &str, ifname: &str) -> String {
    host_veth_name_from_key(&format!("container\0{container_id}\0{ifname}"))
}

/// A file-name-safe digest of an attachment (CNI_CONTAINERID, CNI_IFNAME):
/// 40 hex digits of SHA-1(container ID, NUL, ifname).
pub fn attachment_digest(container_id: &str, ifname: &str) -> String {
    prefixed_sha1_hex("", format!("{container_id}\0{ifname}").as_bytes(), 40)
}

/// Host veth name in `kubenet` mode: `veth` + 8 hex digits of SHA-1 of the
/// attachment key (containerID + ifname), so DEL can find it without state and
/// two attachments never collide in practice (15-byte IFNAMSIZ limit).
pub fn kubenet_host_veth_name(container_id: &str, ifname: &str) -> String {
    prefixed_sha1_hex("veth", format!("{container_id}/{ifname}").as_bytes(), 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_name_is_14_chars_with_prefix() {
        let n = azure_host_veth_name("default", "nginx-7c5b4f");
        assert_eq!(n.len(), 14);
        assert!(n.starts_with("azv"));
        assert!(n[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn name_is_first_11_hex_digits_of_sha1() {
        // FIPS 180-1 test vector: SHA-1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d.
        assert_eq!(host_veth_name_from_key("abc"), "azva9993e36470");
        assert_eq!(
            azure_host_veth_name("a", "b"),
            host_veth_name_from_key("a.b")
        );
    }

    #[test]
    fn attachment_names_never_equal_a_pods_azure_name() {
        // A container ID "ns.pod" (legal in CNI_CONTAINERID) and the pod ns/pod.
        assert_ne!(
            container_host_veth_name("ns.pod", "eth0"),
            azure_host_veth_name("ns", "pod")
        );
        assert_ne!(
            container_host_veth_name("ns.pod", "eth1"),
            pod_interface_host_veth_name("ns", "pod", "eth1")
        );
        assert_ne!(
            pod_interface_host_veth_name("ns", "pod", "eth1"),
            pod_interface_host_veth_name("ns", "pod", "eth2")
        );
        assert_eq!(container_host_veth_name("a", "eth0").len(), 14);
        assert_eq!(attachment_digest("a", "eth0").len(), 40);
        assert_ne!(attachment_digest("a.b", "c"), attachment_digest("a", "b.c"));
    }

    #[test]
    fn names_are_the_hex_digests_prefix_as_sha1_smol_formats_it() {
        // Hosts keep links named by earlier versions, which formatted the digest with
        // `Digest::to_string`: the names must not change.
        for text in ["", "abc", "default.web-0", "container\0x\0eth0"] {
            let full = sha1_smol::Sha1::from(text).digest().to_string();
            assert_eq!(
                prefixed_sha1_hex("p", text.as_bytes(), 40),
                format!("p{full}")
            );
            assert_eq!(prefixed_sha1_hex("", text.as_bytes(), 11), full[..11]);
            assert_eq!(prefixed_sha1_hex("x", text.as_bytes(), 99).len(), 41);
        }
    }

    #[test]
    fn kubenet_name_fits_ifnamsiz() {
        assert!(kubenet_host_veth_name("c".repeat(64).as_str(), "eth0").len() <= 15);
        assert_ne!(
            kubenet_host_veth_name("a", "eth0"),
            kubenet_host_veth_name("b", "eth0")
        );
    }
}
