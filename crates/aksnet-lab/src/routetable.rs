//! The Azure route table (UDR) a kubenet cluster uses: one route per node,
//! named after the node, `<node pod CIDR> → VirtualAppliance <node IP>`
//! (cloud-provider-azure `azure_routes.go`, docs/azure.md#kubenet-routes).
//!
//! Pure: the lab's fabric programs the kernel from a table built here, so the
//! limit below is enforced before any route exists.
//!
//! The limit: "an Azure route table holds at most 400 routes, so a kubenet
//! cluster cannot exceed 400 nodes" (docs/azure.md#kubenet-routes). Azure has since raised the
//! platform limit (MicrosoftDocs/azure-docs PR #128572: 1,000 routes per
//! table), but the AKS kubenet documentation still states
//! 400, so that is the default here; [`RouteTable::with_limit`] models other
//! values. The exact text of Azure's quota error is not public, so
//! the message below states the documented rule instead of imitating a code.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// Routes an Azure route table holds, as AKS's kubenet page documents it.
pub const AZURE_ROUTE_TABLE_LIMIT: usize = aksnet_core::azure::ROUTE_TABLE_LIMIT;

/// One user-defined route: `nextHopType: VirtualAppliance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdrRoute {
    /// The route's name: the node's name, as cloud-provider-azure names it.
    pub name: String,
    pub address_prefix: Ipv4Net,
    pub next_hop: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteTableError {
    #[error(
        "route table {table}: route {route} ({prefix} -> {next_hop}) refused: the table already holds {limit} routes, \
         the most an Azure route table holds, so a kubenet cluster cannot have more than {limit} nodes \
         (AKS docs, configure-kubenet; docs/azure.md#kubenet-routes)"
    )]
    LimitReached {
        table: String,
        route: String,
        prefix: Ipv4Net,
        next_hop: Ipv4Addr,
        limit: usize,
    },
    #[error("route table {table}: route name {route} is already used (for {existing})")]
    DuplicateName {
        table: String,
        route: String,
        existing: Ipv4Net,
    },
    #[error("route table {table}: route {route} for {prefix} overlaps route {other} ({other_prefix}); node pod CIDRs never overlap")]
    Overlap {
        table: String,
        route: String,
        prefix: Ipv4Net,
        other: String,
        other_prefix: Ipv4Net,
    },
}

/// A route table; routes are kept in insertion order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    pub name: String,
    limit: usize,
    routes: Vec<UdrRoute>,
}

impl RouteTable {
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_limit(name, AZURE_ROUTE_TABLE_LIMIT)
    }

    pub fn with_limit(name: impl Into<String>, limit: usize) -> Self {
        Self {
            name: name.into(),
            limit,
            routes: Vec::new(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn routes(&self) -> &[UdrRoute] {
        &self.routes
    }

    /// Adds a route; refuses the route that would exceed the limit, a reused
    /// name and an overlapping prefix, and then changes nothing.
    pub fn add(
        &mut self,
        name: &str,
        address_prefix: Ipv4Net,
        next_hop: Ipv4Addr,
    ) -> Result<(), RouteTableError> {
        if let Some(r) = self.routes.iter().find(|r| r.name == name) {
            return Err(RouteTableError::DuplicateName {
                table: self.name.clone(),
                route: name.to_string(),
                existing: r.address_prefix,
            });
        }
        if let Some(r) = self.routes.iter().find(|r| {
            r.address_prefix.contains(&address_prefix) || address_prefix.contains(&r.address_prefix)
        }) {
            return Err(RouteTableError::Overlap {
                table: self.name.clone(),
                route: name.to_string(),
                prefix: address_prefix,
                other: r.name.clone(),
                other_prefix: r.address_prefix,
            });
        }
        if self.routes.len() >= self.limit {
            return Err(RouteTableError::LimitReached {
                table: self.name.clone(),
                route: name.to_string(),
                prefix: address_prefix,
                next_hop,
                limit: self.limit,
            });
        }
        self.routes.push(UdrRoute {
            name: name.to_string(),
            address_prefix,
            next_hop,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(i: u32) -> Ipv4Net {
        // 10.0.0.0/8 split in /24s: the i-th.
        Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap()
    }

    #[test]
    fn holds_400_routes_and_refuses_the_401st() {
        let mut t = RouteTable::new("aks-agentpool-routetable");
        for i in 0..400 {
            t.add(
                &format!("node-{i}"),
                prefix(i),
                Ipv4Addr::new(10, 224, 0, 4),
            )
            .unwrap();
        }
        let err = t
            .add("node-400", prefix(400), Ipv4Addr::new(10, 224, 1, 148))
            .unwrap_err();
        assert!(matches!(
            err,
            RouteTableError::LimitReached { limit: 400, .. }
        ));
        let text = err.to_string();
        assert!(
            text.contains("node-400") && text.contains("400 routes"),
            "{text}"
        );
        assert_eq!(t.routes().len(), 400, "a refused route changes nothing");
    }

    #[test]
    fn refuses_duplicate_names_and_overlaps() {
        let mut t = RouteTable::new("rt");
        t.add("n0", prefix(0), Ipv4Addr::new(10, 224, 0, 4))
            .unwrap();
        assert!(matches!(
            t.add("n0", prefix(1), Ipv4Addr::new(10, 224, 0, 5)),
            Err(RouteTableError::DuplicateName { .. })
        ));
        let wide: Ipv4Net = "10.0.0.0/16".parse().unwrap();
        assert!(matches!(
            t.add("n1", wide, Ipv4Addr::new(10, 224, 0, 5)),
            Err(RouteTableError::Overlap { .. })
        ));
        assert_eq!(t.routes().len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn never_more_than_the_limit(limit in 0usize..50, n in 0u32..80) {
            let mut t = RouteTable::with_limit("rt", limit);
            let mut ok = 0usize;
            for i in 0..n {
                if t.add(&format!("n{i}"), prefix(i), Ipv4Addr::new(10, 224, 0, 4)).is_ok() {
                    ok += 1;
                }
            }
            proptest::prop_assert_eq!(ok, (n as usize).min(limit));
            proptest::prop_assert_eq!(t.routes().len(), ok);
        }
    }
}
