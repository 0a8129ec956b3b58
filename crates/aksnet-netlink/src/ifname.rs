//! Interface names and MAC addresses: pure helpers.

use crate::error::{NetlinkError, Result};

/// Kernel `IFNAMSIZ`: 16 bytes including the terminating NUL, so a name has
/// at most 15 bytes (include/uapi/linux/if.h).
pub const IFNAMSIZ: usize = 16;

/// Checks an interface name the way the kernel's `dev_valid_name` does:
/// 1..=15 **bytes** (not chars: netavark's `validate_interface_name` counts
/// chars, docs/prior-art.md#interface-names), not `.` or `..`, no `/`, `:`,
/// NUL or whitespace.
pub fn validate_ifname(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("interface name is empty".into());
    }
    if name.len() >= IFNAMSIZ {
        return Err(format!(
            "interface name {name:?} is {} bytes, the kernel allows at most {}",
            name.len(),
            IFNAMSIZ - 1
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("interface name {name:?} is reserved"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || *c == '\0' || c.is_whitespace())
    {
        return Err(format!("interface name {name:?} contains {c:?}"));
    }
    Ok(())
}

pub(crate) fn check_ifname(op: &'static str, name: &str) -> Result<()> {
    validate_ifname(name).map_err(|why| NetlinkError::invalid(op, name, why))
}

/// `aa:aa:aa:aa:aa:aa` form of a MAC address (CNI result `interfaces[].mac`).
pub fn format_mac(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// Parses `aa:aa:aa:aa:aa:aa` (or `-` separated, any case).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ifname_limits_are_bytes() {
        assert!(validate_ifname("azv79d05038592").is_ok()); // 14 bytes, Azure's form
        assert!(validate_ifname("123456789012345").is_ok()); // 15
        assert!(validate_ifname("1234567890123456").is_err()); // 16
        assert!(validate_ifname("ééééééé").is_ok()); // 14 bytes
        assert!(validate_ifname("éééééééé").is_err()); // 8 chars, 16 bytes
        for bad in ["", ".", "..", "a/b", "a b", "eth0:1", "a\0"] {
            assert!(validate_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn mac_text_forms() {
        assert_eq!(format_mac(&[0xaa; 6]), "aa:aa:aa:aa:aa:aa");
        assert_eq!(
            parse_mac("AA-bb-01-02-03-04"),
            Some([0xaa, 0xbb, 1, 2, 3, 4])
        );
        for bad in [
            "",
            "aa:aa",
            "aa:aa:aa:aa:aa:aa:aa",
            "aaa:aa:aa:aa:aa:a",
            "zz:aa:aa:aa:aa:aa",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn mac_round_trips(mac in any::<[u8; 6]>()) {
            prop_assert_eq!(parse_mac(&format_mac(&mac)), Some(mac));
        }

        #[test]
        fn accepted_names_fit_ifnamsiz(name in "\\PC{0,20}") {
            if validate_ifname(&name).is_ok() {
                prop_assert!(!name.is_empty() && name.len() < IFNAMSIZ);
                prop_assert!(!name.contains('/'));
            }
        }
    }
}
