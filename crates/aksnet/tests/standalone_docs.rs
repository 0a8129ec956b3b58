//! The repository stands alone (issue 16, item 1; docs/architecture.md#quality-bars):
//!
//! 1. no tracked file cites notes that are not in the repository (the project's private
//!    research notes, its planning notes, or the documents it started from), so every
//!    comment and every program output points at `docs/` or a public source;
//! 2. every `docs/<page>.md#<anchor>` cited anywhere in the tree, and every relative
//!    `(<page>.md#<anchor>)` link inside `docs/`, names a page that exists and a heading
//!    of that page (GitHub's heading slugs).
//!
//! Reads the files `git ls-files` lists; needs `git` on PATH and the source tree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Paths the check skips for now: the CI machinery, and the trees other engineers are
/// rewriting at the same time (the lead removes those two after merging).
/// `.ci/`, and the planner's corpus: public documents kept unchanged, with their sources.
const SKIP_PREFIXES: &[&str] = &[".ci/", "crates/aksnet-plan/tests/corpus/"];

/// This file: it spells the patterns it looks for.
const SELF_PATH: &str = "crates/aksnet/tests/standalone_docs.rs";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Tracked text files, relative to the repository root, with their contents.
fn tracked_files() -> Vec<(String, String)> {
    let root = repo_root();
    let out = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .expect("this test needs `git` on PATH (Debian package git) to list tracked files");
    assert!(
        out.status.success(),
        "git ls-files failed in {}: {}",
        root.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8(out.stdout).expect("git ls-files printed non-UTF-8 paths");
    list.split('\0')
        .filter(|p| !p.is_empty() && !p.ends_with(".lock"))
        .filter_map(|p| {
            // Deleted-but-tracked files and binary files are not text to check.
            let bytes = std::fs::read(root.join(p)).ok()?;
            let text = String::from_utf8(bytes).ok()?;
            Some((p.to_string(), text))
        })
        .collect()
}

/// The forbidden spellings, assembled so this file does not match itself when read.
fn forbidden_substrings() -> Vec<String> {
    let md = ".md";
    let v = vec![
        format!("../{}/", "shared"),
        format!("{}{}", "research", " §"),
        format!("cni-clients{md} §"),
        format!("{}{}", "the se", "ed"),
        format!("{}{}", "the bri", "ef"),
        format!("{}{}", "brief", " \""),
        format!("{}{}", "Brief", " \""),
    ];
    v
}

/// A note's file name as a whole name: `<note>.md` matches, the Microsoft Learn
/// article `update-azure-cni.md` does not.
fn has_note_name(line: &str) -> bool {
    let joined = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_');
    ["planner", "brief", "rust-anchors", "netpol", "azure-cni"]
        .iter()
        .any(|name| {
            let needle = format!("{name}.md");
            line.match_indices(&needle).any(|(i, _)| {
                !i.checked_sub(1)
                    .map(|j| line.as_bytes()[j])
                    .is_some_and(joined)
            })
        })
}

/// `research/<name>.md` anywhere in `line`.
fn has_research_path(line: &str) -> bool {
    let needle = concat!("research", "/");
    line.match_indices(needle).any(|(i, _)| {
        let rest = &line[i + needle.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        !name.is_empty() && rest[name.len()..].starts_with(".md")
    })
}

/// The words that named the starting documents, as words: "Seed's", "(brief," match;
/// file and cluster names such as `kubenet-seed.yaml` or `seed-nodesubnet` and words
/// such as "seeded" do not.
fn has_banned_word(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let joined = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/');
    ["seed", "brief"].iter().any(|w| {
        lower.match_indices(w).any(|(i, _)| {
            let before = i.checked_sub(1).map(|j| bytes[j]);
            let after = bytes.get(i + w.len()).copied();
            !before.is_some_and(joined) && !after.is_some_and(joined)
        })
    })
}

fn skipped(path: &str) -> bool {
    path == SELF_PATH || SKIP_PREFIXES.iter().any(|p| path.starts_with(p))
}

#[test]
fn no_file_cites_notes_outside_the_repository() {
    let forbidden = forbidden_substrings();
    let mut hits = Vec::new();
    for (path, text) in tracked_files() {
        if skipped(&path) {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            let bad = forbidden.iter().any(|f| line.contains(f.as_str()))
                || has_note_name(line)
                || has_research_path(line)
                || has_banned_word(line);
            if bad {
                hits.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        hits.is_empty(),
        "{} line(s) cite notes the repository does not have; write the fact into docs/ \
         with its public source and cite that instead:\n{}",
        hits.len(),
        hits.join("\n")
    );
}

/// GitHub's heading slug: lower case, punctuation other than `-` and `_` dropped, spaces
/// to `-`; a repeated slug gets `-1`, `-2`, ...
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of one markdown page (headings outside fenced code blocks).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let base = slug(title);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

fn is_slug_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
}

/// Leading slug characters of `s`, without a trailing `-` (prose such as "#a-").
fn take_slug(s: &str) -> &str {
    let end = s.find(|c: char| !is_slug_char(c)).unwrap_or(s.len());
    s[..end].trim_end_matches('-')
}

/// Every (page, anchor) cited in `text`. `page` is the file name inside docs/; the anchor
/// is empty when only the page is named. `relative` also reads `(page.md#anchor)` links,
/// as written inside docs/. After a cited anchor, `, #other` continues on the same page.
fn citations(text: &str, relative: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut prefixes = vec!["docs/"];
    if relative {
        prefixes.push("](");
    }
    for prefix in prefixes {
        for (i, _) in text.match_indices(prefix) {
            // `docs/` of another repository (`owner/repo: docs/x.md` is written with the
            // repository, `https://…/docs/x.md` with a slash before) is not ours.
            let glued = text[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_'));
            if prefix == "docs/" && glued {
                continue;
            }
            let rest = &text[i + prefix.len()..];
            let name_len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .unwrap_or(rest.len());
            let (name, after) = rest.split_at(name_len);
            let Some(after) = after.strip_prefix(".md") else {
                continue;
            };
            if name.is_empty() || (prefix == "](" && rest.starts_with("..")) {
                continue;
            }
            let page = format!("{name}.md");
            let Some(mut tail) = after.strip_prefix('#') else {
                out.push((page, String::new()));
                continue;
            };
            loop {
                let a = take_slug(tail);
                out.push((page.clone(), a.to_string()));
                match tail[a.len()..].strip_prefix(", #") {
                    Some(next) if next.starts_with(|c: char| c.is_ascii_lowercase()) => {
                        tail = next;
                    }
                    _ => break,
                }
            }
        }
    }
    out
}

#[test]
fn every_cited_docs_anchor_exists() {
    let files = tracked_files();
    let pages: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .filter_map(|(p, text)| {
            let name = p.strip_prefix("docs/")?;
            (name.ends_with(".md") && !name.contains('/'))
                .then(|| (name.to_string(), anchors(text)))
        })
        .collect();
    assert!(
        pages.contains_key("azure.md") && pages.contains_key("cni-clients.md"),
        "docs/azure.md and docs/cni-clients.md must exist; found {:?}",
        pages.keys().collect::<Vec<_>>()
    );
    let mut bad = Vec::new();
    for (path, text) in &files {
        if path == SELF_PATH {
            continue;
        }
        let in_docs = path.starts_with("docs/") && !path["docs/".len()..].contains('/');
        for (page, anchor) in citations(text, in_docs) {
            match pages.get(&page) {
                None => bad.push(format!("{path}: docs/{page} does not exist")),
                Some(set) if !anchor.is_empty() && !set.contains(&anchor) => bad.push(format!(
                    "{path}: docs/{page}#{anchor} is not a heading of that page"
                )),
                Some(_) => {}
            }
        }
    }
    bad.sort();
    bad.dedup();
    assert!(
        bad.is_empty(),
        "{} broken docs citation(s):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(slug(" Transparent mode"), "transparent-mode");
    assert_eq!(slug(" CNI_ARGS"), "cni_args");
    assert_eq!(slug(" `aksnet node join`"), "aksnet-node-join");
    assert_eq!(
        slug(" Spec file: the /24 (8 nodes)"),
        "spec-file-the-24-8-nodes"
    );
    let a = anchors("# T\n## Errors\n```\n# not a heading\n```\n## Errors\n#nospace\n");
    assert_eq!(
        a,
        ["t", "errors", "errors-1"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

#[test]
fn citations_are_parsed_with_continuations() {
    let c = citations(
        "see docs/azure.md#max-pods, #kubenet and docs/node.md.",
        false,
    );
    assert_eq!(
        c,
        vec![
            ("azure.md".to_string(), "max-pods".to_string()),
            ("azure.md".to_string(), "kubenet".to_string()),
            ("node.md".to_string(), String::new()),
        ]
    );
    let r = citations("[x](azure.md#overlay) [y](../bench/a.md)", true);
    assert_eq!(r, vec![("azure.md".to_string(), "overlay".to_string())]);
    assert!(has_banned_word("(the Seed's example)"));
    assert!(!has_banned_word(
        "kubenet-seed.yaml, seed-nodesubnet, seeded"
    ));
}
