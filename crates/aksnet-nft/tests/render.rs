//! Pure tests: rendering (golden), validation errors, decoding a real nft 1.0.6 listing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod common;

use aksnet_nft::listing::decode_table;
use aksnet_nft::render::{delete_script, render_table, replace_script};
use aksnet_nft::{AddrField, AddrValue, Expr, Family, NftError, Op, Rule};
use common::{net, sample_table};

fn golden(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("AKSNET_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with AKSNET_BLESS=1 to create)",
            path.display()
        )
    });
    assert_eq!(actual, expected, "golden file {} differs", path.display());
}

#[test]
fn sample_table_renders_like_nft_list() {
    golden("sample.nft", &render_table(&sample_table("aksnt-sample")));
}

#[test]
fn replace_script_creates_deletes_and_redefines_only_our_table() {
    let script = replace_script(&sample_table("aksnt-sample")).unwrap();
    let mut lines = script.lines();
    assert_eq!(lines.next(), Some("table inet aksnt-sample"));
    assert_eq!(lines.next(), Some("delete table inet aksnt-sample"));
    assert_eq!(lines.next(), Some("table inet aksnt-sample {"));
    // Every `table` line names our table and nothing else.
    for l in script
        .lines()
        .filter(|l| l.starts_with("table") || l.starts_with("delete"))
    {
        assert!(l.contains("inet aksnt-sample"), "{l}");
    }
    assert_eq!(
        delete_script(Family::Ip, "aksnt-x").unwrap(),
        "table ip aksnt-x\ndelete table ip aksnt-x\n"
    );
}

fn invalid(t: &aksnet_nft::Table) -> (String, String) {
    match t.validate() {
        Err(NftError::Invalid { what, value, .. }) => (what.to_string(), value),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn validation_names_the_object_and_value() {
    let mut t = sample_table("bad name");
    assert_eq!(invalid(&t), ("table name".into(), "bad name".into()));
    t = sample_table("1abc");
    assert_eq!(invalid(&t).1, "1abc");
    t = sample_table(&"a".repeat(65));
    assert_eq!(invalid(&t).0, "table name");
    assert!(delete_script(Family::Inet, "x;flush ruleset").is_err());

    t = sample_table("ok");
    t.chains[0].rules[0].comment = Some("say \"hi\"".into());
    assert_eq!(invalid(&t).0, "rule comment");
    t = sample_table("ok");
    t.chains[0].rules[0].comment = Some("line\nbreak".into());
    assert_eq!(invalid(&t).0, "rule comment");
    t = sample_table("ok");
    t.chains[1].rules[3].comment = Some("must be last".into());
    assert_eq!(invalid(&t).0, "rule comment");

    t = sample_table("ok");
    t.chains[0].rules[0].exprs[2] = Expr::Jump("nowhere".into());
    assert_eq!(invalid(&t), ("jump target".into(), "nowhere".into()));
    t = sample_table("ok");
    t.chains[0].rules[0].exprs[0] = Expr::Addr {
        field: AddrField::Ip4Saddr,
        op: Op::Eq,
        value: AddrValue::SetRef("pods-v6".into()),
    };
    assert_eq!(invalid(&t), ("set reference".into(), "pods-v6".into()));
    t = sample_table("ok");
    t.sets[0].elements.push(net("fd00::/8"));
    assert_eq!(invalid(&t).0, "set element");
    t = sample_table("ok");
    t.sets[0].elements.push("10.0.0.1/8".parse().unwrap());
    assert_eq!(invalid(&t).0, "set element");
    t = sample_table("ok");
    t.sets[1].name = "pods-v4".into();
    assert_eq!(invalid(&t), ("set name".into(), "pods-v4".into()));
    t = sample_table("ok");
    t.chains[2].rules.push(Rule::new(vec![Expr::Addr {
        field: AddrField::Ip6Daddr,
        op: Op::Eq,
        value: AddrValue::Prefix(net("10.0.0.0/8")),
    }]));
    assert_eq!(invalid(&t).0, "address match");
    t = sample_table("ok");
    t.chains[2]
        .rules
        .push(Rule::new(vec![Expr::Unknown("{}".into())]));
    assert_eq!(invalid(&t).0, "expression");
}

/// `tests/golden/sample-listing.json` is what nft 1.0.6 printed for `sample.nft` on this
/// machine (`nft -j list table inet aksnt-sample`); the kernel test checks it live.
#[test]
fn decodes_a_real_listing_into_the_same_ruleset() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sample-listing.json");
    let json = std::fs::read_to_string(path).unwrap();
    let decoded = decode_table(&json, Family::Inet, "aksnt-sample")
        .unwrap()
        .unwrap();
    assert!(decoded.handle.is_some());
    let want = sample_table("aksnt-sample");
    assert_eq!(decoded.table.canonical(), want.canonical());
    assert!(decoded.table.same_ruleset(&want));
    // Another table's name decodes as "absent".
    assert_eq!(decode_table(&json, Family::Inet, "other").unwrap(), None);
    assert_eq!(
        decode_table(&json, Family::Ip, "aksnt-sample").unwrap(),
        None
    );
}

#[test]
fn unknown_expressions_make_the_table_differ_instead_of_failing() {
    let json = r#"{"nftables":[{"table":{"family":"ip","name":"t","handle":3}},
      {"chain":{"family":"ip","table":"t","name":"c","handle":1}},
      {"rule":{"family":"ip","table":"t","chain":"c","handle":2,"expr":[{"limit":{"rate":1}},{"accept":null}]}}]}"#;
    let d = decode_table(json, Family::Ip, "t").unwrap().unwrap();
    assert!(matches!(
        d.table.chains[0].rules[0].exprs[0],
        Expr::Unknown(_)
    ));
    assert_eq!(d.table.chains[0].rules[0].exprs[1], Expr::Accept);
    assert!(decode_table("not json", Family::Ip, "t").is_err());
    assert!(decode_table("{}", Family::Ip, "t").is_err());
}

#[test]
fn canonical_form_ignores_element_order() {
    let a = sample_table("x");
    let mut b = sample_table("x");
    b.sets[0].elements.reverse();
    b.sets[0].elements.push(net("10.9.0.0/24"));
    assert!(a.same_ruleset(&b));
    b.sets[0].elements.push(net("10.10.0.0/24"));
    assert!(!a.same_ruleset(&b));
}
