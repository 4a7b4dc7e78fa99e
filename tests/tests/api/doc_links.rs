//! The documentation holds together: README.md is a short front page that
//! keeps the two commands and links every page under docs/; every relative
//! link in README.md and the Markdown under docs/ and infra/ leads to a file
//! that exists, and every `#anchor` to a heading of its page (GitHub's
//! heading ids), read with a Markdown parser rather than a pattern.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// README.md and every Markdown file below docs/ and infra/ (dependencies'
/// folders left out).
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() && name != "node_modules" && name != "target" && name != ".venv" {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }
    let mut found = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut found);
    walk(&root().join("infra"), &mut found);
    found
}

/// GitHub's id for a heading: lower case, every character but letters,
/// digits, spaces, `-` and `_` dropped, spaces made `-`; a repeated id gets
/// `-1`, `-2`….
fn heading_ids(text: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let Some(h) = heading.take() else { continue };
                let id: String = h
                    .to_lowercase()
                    .chars()
                    .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                    .map(|c| if c == ' ' { '-' } else { c })
                    .collect();
                let mut unique = id.clone();
                let mut n = 0;
                while ids.contains(&unique) {
                    n += 1;
                    unique = format!("{id}-{n}");
                }
                ids.insert(unique);
            }
            _ => {}
        }
    }
    ids
}

/// Every link and image target of `text`.
fn targets(text: &str) -> Vec<String> {
    Parser::new(text)
        .filter_map(|event| match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some(dest_url.to_string())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("readable");
        let dir = page.parent().expect("a folder");
        for target in targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if file.is_empty() {
                page.clone()
            } else {
                dir.join(file)
            };
            let shown = page
                .strip_prefix(root())
                .unwrap_or(&page)
                .display()
                .to_string();
            if !linked.exists() {
                broken.push(format!("{shown}: {target} (no such file)"));
                continue;
            }
            if !anchor.is_empty() && linked.extension().is_some_and(|e| e == "md") {
                let linked_text = std::fs::read_to_string(&linked).expect("readable");
                if !heading_ids(&linked_text).contains(anchor) {
                    broken.push(format!("{shown}: {target} (no such heading)"));
                }
            }
        }
    }
    // 42 once the README was split into docs/ pages; a few links may go,
    // but far fewer means pages or links are no longer being read.
    assert!(
        checked >= 38,
        "only {checked} links found: is the parser reading the pages?"
    );
    assert_eq!(broken, Vec::<String>::new());
}

#[test]
fn heading_ids_follow_github() {
    let ids = heading_ids(
        "# The deployed shape, locally: `--lambda`\n## Tests\n## Tests\n## What it costs at rest\n",
    );
    for id in [
        "the-deployed-shape-locally---lambda",
        "tests",
        "tests-1",
        "what-it-costs-at-rest",
    ] {
        assert!(ids.contains(id), "{id} in {ids:?}");
    }
}

/// The contents of every fenced code block of `text` whose info string is
/// `sh`.
fn sh_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) if &*info == "sh" => {
                open = Some(String::new());
            }
            Event::Text(t) => {
                if let Some(block) = open.as_mut() {
                    block.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(open.take()),
            _ => {}
        }
    }
    blocks
}

/// The two commands, each with the sentence that introduces it, kept word
/// for word on the front page.
const TWO_COMMANDS: [(&str, &str); 2] = [
    (
        "Run the API locally on <http://127.0.0.1:3000> (in-memory store, nothing to install beyond Rust):",
        "cargo run -p local-api",
    ),
    (
        "Run all the tests (needs Rust, Java 17+, Node.js and Python 3; installs and starts DynamoDB Local and an SQS emulator itself):",
        "./infra/test.sh",
    ),
];

#[test]
fn the_readme_is_a_front_page_with_the_two_commands_and_a_link_to_every_docs_page() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md is readable");
    let lines = readme.lines().count();
    assert!(lines <= 300, "README.md has {lines} lines, more than 300");

    let blocks = sh_blocks(&readme);
    for (sentence, command) in TWO_COMMANDS {
        assert!(
            readme.lines().any(|line| line == sentence),
            "README.md lost the sentence {sentence:?}"
        );
        assert!(
            blocks.iter().any(|block| block.trim_end() == command),
            "README.md has no sh block holding exactly `{command}`: {blocks:?}"
        );
    }

    let linked: BTreeSet<String> = targets(&readme)
        .into_iter()
        .filter_map(|target| {
            let file = target.split('#').next().unwrap_or_default();
            (file.starts_with("docs/") && file.ends_with(".md")).then(|| file.to_owned())
        })
        .collect();
    let mut pages: Vec<String> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ is readable")
        .flatten()
        .map(|entry| format!("docs/{}", entry.file_name().to_string_lossy()))
        .filter(|name| name.ends_with(".md"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 4, "docs/ holds {pages:?}");
    let unlinked: Vec<&String> = pages.iter().filter(|p| !linked.contains(*p)).collect();
    assert_eq!(
        unlinked,
        Vec::<&String>::new(),
        "docs pages README.md does not link"
    );
}
