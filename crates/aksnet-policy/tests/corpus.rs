//! The corpus (tests/corpus/*.json): every probe file's model verdicts must equal the verdicts
//! its author wrote in `expect`. Each file states the behaviour it pins in `description`.

use std::path::PathBuf;

use aksnet_policy::probe;

fn corpus_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap_or_else(|e| panic!("{e}")).path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "corpus is missing: {}", dir.display());
    files
}

#[test]
fn every_corpus_file_matches_its_expectations() {
    let mut failures = Vec::new();
    let mut verdicts = 0;
    for f in corpus_files() {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let s = probe::parse(&f.display().to_string(), &text).unwrap_or_else(|e| panic!("{e}"));
        for step in &s.steps {
            assert!(
                step.expect.is_some(),
                "{}: step {} has no expect",
                f.display(),
                step.name
            );
        }
        let report = probe::evaluate_scenario(&s);
        for st in &report.steps {
            for r in &st.verdicts {
                verdicts += 1;
                if r.mismatch() {
                    failures.push(format!(
                        "{} step {}: {} -> {} {}/{}: model {} expected {:?} ({})",
                        f.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        st.name,
                        r.from,
                        r.to,
                        r.port,
                        r.protocol,
                        r.allowed,
                        r.expected,
                        r.reason
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {verdicts} verdicts differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
