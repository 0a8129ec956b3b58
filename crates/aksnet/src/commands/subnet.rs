//! `aksnet subnet reserve|release|list`: addresses of a node subnet held by VMs,
//! load balancers or anything else that is not an aksnet node (issue 13 item 3;
//! docs/node.md, "Other tenants of the subnet"). They are never given to a node,
//! and `aksnet node join` counts them in InsufficientSubnetSize as Azure counts
//! other NICs of the subnet.
//!
//! Exit codes: 0 done; 1 refused or failed (the address is held by a node or
//! another tenant, store errors); 2 bad input (always naming the flag and value).

use std::net::Ipv4Addr;
use std::process::ExitCode;

use aksnet_core::azure::NodeSubnet;
use aksnet_store::reservation::ReservationError;
use aksnet_store::tenants::{
    self, check_range, list_subnet_tenants, list_tenants, validate_owner, ReserveOutcome, Tenant,
    TenantError,
};
use aksnet_store::{list_subnets, Store};

use super::node::{
    checked_name, parse_subnet_name, subnet_flag, ListFormat, NodeError, StoreArgs,
    DEFAULT_SUBNET_NAME,
};

#[derive(clap::Subcommand)]
pub enum SubnetCommand {
    /// Reserve addresses of the node subnet for something that is not a node (a VM,
    /// a load balancer): no node is ever given them.
    Reserve(ReserveArgs),
    /// Release exactly one reservation made with `reserve`.
    Release(ReleaseArgs),
    /// Show the reserved addresses of every subnet (or of --subnet-name).
    List(ListArgs),
}

/// An inclusive address range from `IP` or `IP-IP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressRange {
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl std::fmt::Display for AddressRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

fn parse_range(s: &str) -> Result<AddressRange, String> {
    let ip = |p: &str| {
        p.parse::<Ipv4Addr>()
            .map_err(|_| format!("{p:?} is not an IPv4 address (expected IP or IP-IP)"))
    };
    let (first, last) = match s.split_once('-') {
        Some((a, b)) => (ip(a)?, ip(b)?),
        None => (ip(s)?, ip(s)?),
    };
    if first > last {
        return Err(format!(
            "range {s} is reversed: the first address is above the last"
        ));
    }
    Ok(AddressRange { first, last })
}

fn parse_owner(s: &str) -> Result<String, String> {
    checked_name(s, validate_owner)
}

fn parse_subnet(s: &str) -> Result<NodeSubnet, String> {
    subnet_flag(s, "")
}

#[derive(clap::Args)]
pub struct ReserveArgs {
    /// One address or an inclusive range, e.g. 10.240.0.200 or 10.240.0.200-10.240.0.209.
    #[arg(long, value_name = "IP[-IP]", value_parser = parse_range)]
    pub address: AddressRange,
    /// Who holds the addresses (a VM's or load balancer's name).
    #[arg(long, value_name = "NAME", value_parser = parse_owner)]
    pub owner: String,
    /// The subnet's name (as in `node join --subnet-name`).
    #[arg(long, value_name = "NAME", default_value = DEFAULT_SUBNET_NAME, value_parser = parse_subnet_name)]
    pub subnet_name: String,
    /// The subnet's CIDR; needed only when no node joined it yet (otherwise the
    /// store's, and a different one is refused).
    #[arg(long, value_name = "CIDR", value_parser = parse_subnet)]
    pub subnet: Option<NodeSubnet>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(clap::Args)]
pub struct ReleaseArgs {
    /// The reservation's address or range, exactly as reserved.
    #[arg(long, value_name = "IP[-IP]", value_parser = parse_range)]
    pub address: AddressRange,
    #[arg(long, value_name = "NAME", default_value = DEFAULT_SUBNET_NAME, value_parser = parse_subnet_name)]
    pub subnet_name: String,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this subnet's reservations.
    #[arg(long, value_name = "NAME", value_parser = parse_subnet_name)]
    pub subnet_name: Option<String>,
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, thiserror::Error)]
pub enum SubnetError {
    /// A refusal caused by the address itself, with the flag and value it came from.
    #[error("--address {value}: {source}")]
    Address {
        value: String,
        #[source]
        source: TenantError,
    },
    #[error(
        "subnet {name} is not in cluster store {store} yet (no node joined it): pass \
         --subnet CIDR to register it"
    )]
    UnknownSubnet { name: String, store: String },
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Reservation(#[from] ReservationError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("serialise the list: {0}")]
    Json(#[from] serde_json::Error),
}

impl SubnetError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Address { source, .. } if source.is_bad_input() => 2,
            Self::UnknownSubnet { .. } => 2,
            Self::Tenant(e) if e.is_bad_input() => 2,
            Self::Reservation(ReservationError::SubnetCidrMismatch { .. }) => 2,
            Self::Node(e) => super::node::exit_code(e),
            _ => 1,
        }
    }
}

pub fn run(cmd: SubnetCommand) -> ExitCode {
    let (name, result) = match cmd {
        SubnetCommand::Reserve(a) => ("reserve", run_reserve(&a)),
        SubnetCommand::Release(a) => ("release", run_release(&a)),
        SubnetCommand::List(a) => ("list", run_list(&a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aksnet subnet {name}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Prints one line; a closed stdout ends the output quietly (SIGPIPE is ignored
/// for `aksnet subnet`, as for `aksnet node`, because of the etcd socket).
fn emit(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// The subnet to reserve in: the store's when a node joined it, else `--subnet`.
fn resolve_subnet(a: &ReserveArgs, store: &dyn Store) -> Result<NodeSubnet, SubnetError> {
    let known = list_subnets(store)?
        .into_iter()
        .find(|(n, _)| *n == a.subnet_name)
        .map(|(_, s)| s);
    match (known, a.subnet) {
        (Some(k), Some(s)) if k != s => Err(ReservationError::SubnetCidrMismatch {
            name: a.subnet_name.clone(),
            registered: k.cidr(),
            asked: s.cidr(),
        }
        .into()),
        (Some(s), _) | (None, Some(s)) => Ok(s),
        (None, None) => Err(SubnetError::UnknownSubnet {
            name: a.subnet_name.clone(),
            store: store.describe(),
        }),
    }
}

fn address_error(a: &AddressRange, e: TenantError) -> SubnetError {
    match e {
        TenantError::NotInSubnet { .. }
        | TenantError::AzureReserved { .. }
        | TenantError::Reversed { .. }
        | TenantError::HeldByNode { .. }
        | TenantError::HeldByTenant { .. } => SubnetError::Address {
            value: a.to_string(),
            source: e,
        },
        other => SubnetError::Tenant(other),
    }
}

fn run_reserve(a: &ReserveArgs) -> Result<(), SubnetError> {
    let store = a.store.open()?;
    let subnet = resolve_subnet(a, &*store)?;
    // Checked here too so a bad address fails before anything is written (the
    // store also refuses a --subnet that differs from the registered one).
    check_range(&subnet, a.address.first, a.address.last)
        .map_err(|e| address_error(&a.address, e))?;
    let range = (a.address.first, a.address.last);
    let outcome = tenants::reserve(&*store, &a.subnet_name, &subnet, range, &a.owner)
        .map_err(|e| address_error(&a.address, e))?;
    let (verb, t) = match &outcome {
        ReserveOutcome::Reserved(t) => ("reserved", t),
        ReserveOutcome::AlreadyReserved(t) => ("already reserved", t),
    };
    emit(&format!(
        "{verb} {} ({} address{}) of subnet {} ({subnet}) for {}",
        t.range(),
        t.len(),
        if t.len() == 1 { "" } else { "es" },
        t.subnet_name,
        t.owner
    ));
    Ok(())
}

fn run_release(a: &ReleaseArgs) -> Result<(), SubnetError> {
    let store = a.store.open()?;
    let t = tenants::release(&*store, &a.subnet_name, (a.address.first, a.address.last)).map_err(
        |e| match e {
            TenantError::NotReserved { .. } => SubnetError::Address {
                value: a.address.to_string(),
                source: e,
            },
            other => SubnetError::Tenant(other),
        },
    )?;
    emit(&format!(
        "released {} of subnet {} (was {})",
        t.range(),
        t.subnet_name,
        t.owner
    ));
    Ok(())
}

fn run_list(a: &ListArgs) -> Result<(), SubnetError> {
    let store = a.store.open()?;
    let list: Vec<Tenant> = match &a.subnet_name {
        Some(n) => list_subnet_tenants(&*store, n)?,
        None => list_tenants(&*store)?,
    };
    match a.format {
        ListFormat::Json => emit(&serde_json::to_string_pretty(&list)?),
        ListFormat::Table => {
            emit(&format!(
                "{:<16} {:<32} {:>9}  OWNER",
                "SUBNET", "ADDRESSES", "COUNT"
            ));
            for t in &list {
                emit(&format!(
                    "{:<16} {:<32} {:>9}  {}",
                    t.subnet_name,
                    t.range(),
                    t.len(),
                    t.owner
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_reversed_or_bad_ones_name_the_value() {
        assert_eq!(
            parse_range("10.0.0.9").map(|r| r.to_string()),
            Ok("10.0.0.9".to_string())
        );
        assert_eq!(
            parse_range("10.0.0.9-10.0.0.12").map(|r| r.to_string()),
            Ok("10.0.0.9-10.0.0.12".to_string())
        );
        assert!(parse_range("10.0.0.12-10.0.0.9")
            .unwrap_err()
            .contains("10.0.0.12-10.0.0.9 is reversed"));
        assert!(parse_range("10.0.0.x")
            .unwrap_err()
            .contains("\"10.0.0.x\""));
    }
}
