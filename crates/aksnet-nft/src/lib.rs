//! aksnet-nft: a typed model of the nftables objects aksnet owns, rendered to nft text and
//! applied with `nft -f -` as ONE atomic transaction that replaces only our own table.
//!
//! Design (docs/prior-art.md#nftables: our own typed model rendered to text, knftables' design):
//! - [`model`]: tables, sets, chains and rules as Rust types; names and comments are validated,
//!   never free user text, so the rendered script cannot be injected into.
//! - [`render`]: pure text renderer, golden-tested; the output reads like `nft list table`.
//! - [`listing`]: tolerant decoder of `nft -j list table …` for OUR table only (netavark#942:
//!   never parse the whole ruleset); anything it does not model decodes as
//!   [`model::Expr::Unknown`], which simply makes the table compare unequal and get rewritten.
//! - [`shared`]: in-place changes (declare, flush, add/delete elements) to a table several
//!   owners share, e.g. the CNI plugin's `ipMasq` table; one transaction per change.
//! - [`elements`], [`nfnetlink`]: element-only changes (set and map elements of existing
//!   sets) as one list, sent as ONE nf_tables netlink batch without the `nft` process.
//! - [`backend`]: the [`backend::NftBackend`] trait, the real [`backend::NftCommand`] driving the
//!   `nft` binary, and a recording [`backend::FakeNft`] for unit tests of callers.

pub mod backend;
pub mod elements;
pub mod error;
pub mod filter;
pub mod listing;
pub mod model;
pub mod nfnetlink;
pub mod render;
pub mod shared;

pub use backend::{FakeNft, ListedTable, NftBackend, NftCommand};
pub use error::NftError;
pub use model::{
    AddrField, AddrValue, BaseChain, Chain, ChainType, Expr, Family, Hook, Op, Policy, Rule, Set,
    SetType, Table,
};
pub use shared::Changes;
