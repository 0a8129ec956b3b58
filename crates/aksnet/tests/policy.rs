//! `aksnet policy eval|explain` end to end: the corpus passes with exit 0 in both formats, a
//! wrong expectation exits 1, bad input exits 2 naming the field, explain names the rule.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../aksnet-policy/tests/corpus")
}

fn aksnet(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_aksnet"))
        .arg("policy")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn corpus_evaluates_as_expected_in_both_formats() {
    let mut n = 0;
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let path = entry.unwrap().path();
        let p = path.to_str().unwrap();
        let (code, out, err) = aksnet(&["eval", p]);
        assert_eq!(code, 0, "{p}: {out}{err}");
        assert!(out.contains(" 0 mismatches"), "{out}");
        let (code, out, _) = aksnet(&["eval", p, "--format", "json"]);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let row = &v["steps"][0]["verdicts"][0];
        for key in [
            "from", "to", "port", "protocol", "allowed", "observed", "reason",
        ] {
            assert!(row.get(key).is_some(), "{p}: no {key} in {row}");
        }
        assert!(row["observed"].is_null());
        n += 1;
    }
    assert!(n >= 20);
}

#[test]
fn wrong_expectation_exits_1_and_bad_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(corpus().join("01-default-deny-ingress.json")).unwrap();
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        text.replace("\"allowed\": false", "\"allowed\": true"),
    )
    .unwrap();
    let (code, out, _) = aksnet(&["eval", wrong.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("!! "), "{out}");

    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        text.replace("\"cidr\"", "\"x\"").replace(
            "\"podSelector\": {}",
            "\"podSelector\": {\"matchExpressions\": [{\"key\": \"a\", \"operator\": \"In\"}]}",
        ),
    )
    .unwrap();
    let (code, _, err) = aksnet(&["eval", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("spec.podSelector.matchExpressions[0].values"),
        "{err}"
    );
    assert!(err.contains("bad.json"), "{err}");
}

#[test]
fn explain_names_the_isolating_policy_and_rule() {
    let f = corpus().join("16-both-sides.json");
    let f = f.to_str().unwrap();
    let (code, out, _) = aksnet(&[
        "explain",
        f,
        "--from",
        "x/a",
        "--to",
        "y/b",
        "--port",
        "80/TCP",
        "--step",
        "client-denies",
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("DENIED"), "{out}");
    assert!(out.contains("x/deny-egress has no egress rules"), "{out}");
    assert!(
        out.contains("y/from-xa ingress[0]: peer matches, port matches"),
        "{out}"
    );
    let (code, _, err) = aksnet(&[
        "explain", f, "--from", "x/nope", "--to", "y/b", "--port", "80",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("x/nope"), "{err}");
}
