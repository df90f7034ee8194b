//! Reading descriptions out of doc comments: the tool's text before its `# Arguments`
//! heading, and each parameter's entry in that section.
//!
//! The rendering is deliberately plain Markdown-preserving text, not a Markdown parser:
//! lines of a paragraph are joined with spaces (a doc comment's line breaks are layout, not
//! meaning), paragraphs stay apart by a blank line, list items, headings and code blocks
//! keep their own lines, so what the model reads is what the author wrote.

use proc_macro2::Span;
use syn::{Attribute, Expr, ExprLit, Lit, Meta};

/// The lines of a doc comment, common indentation removed, with where each was written.
pub(crate) struct DocText {
    /// The lines, in order.
    pub(crate) lines: Vec<String>,
    /// The span of the doc attribute each line came from (same length as `lines`).
    pub(crate) spans: Vec<Span>,
}

impl DocText {
    /// The span of line `i`, or the call site's if there is no such line.
    pub(crate) fn span(&self, i: usize) -> Span {
        self.spans.get(i).copied().unwrap_or_else(Span::call_site)
    }
}

/// Collects the `#[doc = "..."]` lines of `attrs` (what `///` and `/** */` become).
/// Docs that are not a string literal (`#[doc = include_str!(..)]`) cannot be read by a
/// macro and are skipped; `#[doc(hidden)]` and the like carry no text.
pub(crate) fn doc_text(attrs: &[Attribute]) -> DocText {
    let mut lines = Vec::new();
    let mut spans = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        let Meta::NameValue(pair) = &attr.meta else {
            continue;
        };
        let Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) = &pair.value
        else {
            continue;
        };
        for line in text.value().split('\n') {
            lines.push(line.trim_end_matches('\r').to_owned());
            spans.push(text.span());
        }
    }
    unindent(&mut lines);
    DocText { lines, spans }
}

/// Removes the indentation all non-blank lines share (`///` leaves one space), as rustdoc
/// does; blank lines become empty.
pub(crate) fn unindent(lines: &mut [String]) {
    let indent = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    for line in lines.iter_mut() {
        if line.trim().is_empty() {
            line.clear();
        } else {
            line.replace_range(..indent, "");
        }
    }
}

/// One entry of a `# Arguments` section: `` * `city` - The city name ``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArgDoc {
    /// The parameter named (without `r#`).
    pub(crate) name: String,
    /// Whether the name was written in backticks (surely meant as a parameter's name; a
    /// bare word may be prose).
    pub(crate) quoted: bool,
    /// Its description, continuation lines joined with spaces; may be empty.
    pub(crate) text: String,
    /// The index of the line the entry starts on.
    pub(crate) line: usize,
}

/// A tool's doc comment, split.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Docs {
    /// Everything before the `# Arguments` heading, rendered for the model.
    pub(crate) description: String,
    /// The entries of the `# Arguments` section, in order.
    pub(crate) args: Vec<ArgDoc>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Description,
    Arguments,
    Rest,
}

/// Splits doc lines into the description (all before an `# Arguments`, `# Args`,
/// `# Parameters` or `# Params` heading, any level) and the entries of that section. The
/// section ends at the next heading; what follows it is not part of the description.
/// Headings inside code blocks do not count.
pub(crate) fn split_docs<S: AsRef<str>>(lines: &[S]) -> Docs {
    let mut description: Vec<&str> = Vec::new();
    let mut args: Vec<ArgDoc> = Vec::new();
    let mut section = Section::Description;
    let mut in_fence = false;
    // Whether a non-bullet line continues the last entry.
    let mut continuing = false;
    for (i, line) in lines.iter().enumerate() {
        let line = line.as_ref();
        let trimmed = line.trim();
        let fence = is_fence(trimmed);
        let title = if in_fence || fence {
            None
        } else {
            heading(trimmed)
        };
        if fence {
            in_fence = !in_fence;
        }
        if let Some(title) = title {
            if is_arguments_title(title) {
                section = Section::Arguments;
                continuing = false;
                continue;
            }
            if section == Section::Arguments {
                section = Section::Rest;
            }
        }
        match section {
            Section::Description => description.push(line),
            Section::Rest => {}
            Section::Arguments => {
                if trimmed.is_empty() || in_fence || fence {
                    continuing = false;
                } else if let Some(rest) = strip_bullet(trimmed) {
                    continuing = match parse_entry(rest) {
                        Some(entry) => {
                            args.push(ArgDoc {
                                name: entry.name,
                                quoted: entry.quoted,
                                text: entry.text,
                                line: i,
                            });
                            true
                        }
                        None => false,
                    };
                } else if continuing && let Some(entry) = args.last_mut() {
                    if !entry.text.is_empty() {
                        entry.text.push(' ');
                    }
                    entry.text.push_str(trimmed);
                }
            }
        }
    }
    Docs {
        description: render(&description),
        args,
    }
}

/// Renders doc lines as one text: a paragraph's lines joined with spaces, paragraphs
/// separated by a blank line, list items and headings on their own lines, code blocks
/// verbatim. Leading and trailing blank lines are dropped.
pub(crate) fn render<S: AsRef<str>>(lines: &[S]) -> String {
    let mut out = String::new();
    let mut in_fence = false;
    // A blank line was seen since the last text.
    let mut blank = false;
    // The last line written must end its line (code, heading).
    let mut line_ended = false;
    for line in lines {
        let line = line.as_ref();
        let trimmed = line.trim();
        let fence = is_fence(trimmed);
        if in_fence || fence {
            separate(&mut out, if blank { "\n\n" } else { "\n" });
            out.push_str(line.trim_end());
            if fence {
                in_fence = !in_fence;
            }
            blank = false;
            line_ended = true;
            continue;
        }
        if trimmed.is_empty() {
            blank = true;
            continue;
        }
        let is_heading = heading(trimmed).is_some();
        let separator = if blank {
            "\n\n"
        } else if line_ended || is_heading || is_list_item(trimmed) {
            "\n"
        } else {
            " "
        };
        separate(&mut out, separator);
        out.push_str(trimmed);
        blank = false;
        line_ended = is_heading;
    }
    out
}

fn separate(out: &mut String, separator: &str) {
    if !out.is_empty() {
        out.push_str(separator);
    }
}

fn is_fence(trimmed: &str) -> bool {
    trimmed.starts_with("```") || trimmed.starts_with("~~~")
}

/// The title of a Markdown heading line (`## Arguments` gives `Arguments`).
fn heading(trimmed: &str) -> Option<&str> {
    let rest = trimmed.trim_start_matches('#');
    if rest.len() == trimmed.len() {
        return None;
    }
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim())
}

fn is_arguments_title(title: &str) -> bool {
    let title = title.trim_end_matches(':').trim();
    ["arguments", "args", "parameters", "params"]
        .iter()
        .any(|word| title.eq_ignore_ascii_case(word))
}

/// What follows a `*`, `-` or `+` bullet and its space.
fn strip_bullet(trimmed: &str) -> Option<&str> {
    let rest = trimmed.strip_prefix(['*', '-', '+'])?;
    if rest.starts_with(char::is_whitespace) {
        Some(rest.trim_start())
    } else {
        None
    }
}

fn is_list_item(trimmed: &str) -> bool {
    if strip_bullet(trimmed).is_some() {
        return true;
    }
    let rest = trimmed.trim_start_matches(|c: char| c.is_ascii_digit());
    rest.len() < trimmed.len() && (rest.starts_with(". ") || rest.starts_with(") "))
}

/// An entry of the `# Arguments` section, as written.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    name: String,
    quoted: bool,
    text: String,
}

/// Reads an entry after its bullet: `` `city` - text ``, `` `city`: text ``,
/// `` `city` — text ``, `` `city` text ``, `city: text` or `city - text`. A bare name
/// needs a colon or a spaced dash after it, so prose bullets (`- well-known names`) are not
/// taken for entries.
fn parse_entry(rest: &str) -> Option<Entry> {
    let (name, after, quoted) = match rest.strip_prefix('`') {
        Some(inner) => {
            let end = inner.find('`')?;
            (inner[..end].trim(), &inner[end + 1..], true)
        }
        None => {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            (&rest[..end], &rest[end..], false)
        }
    };
    let name = name.strip_prefix("r#").unwrap_or(name);
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let spaced = after.starts_with(char::is_whitespace);
    let after = after.trim_start();
    let text = match strip_separator(after) {
        Some((text, colon)) if quoted || colon || spaced => text,
        Some(_) => return None,
        None if quoted => after,
        None => return None,
    };
    Some(Entry {
        name: name.to_owned(),
        quoted,
        text: text.trim().to_owned(),
    })
}

/// What follows a separator (`:`, `-`, `--`, `—`, `–`), and whether it was a colon.
fn strip_separator(text: &str) -> Option<(&str, bool)> {
    if let Some(rest) = text.strip_prefix(':') {
        return Some((rest, true));
    }
    for dash in ["--", "—", "–", "-"] {
        if let Some(rest) = text.strip_prefix(dash) {
            return Some((rest, false));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn arg(name: &str, text: &str, line: usize) -> ArgDoc {
        ArgDoc {
            name: name.to_owned(),
            quoted: true,
            text: text.to_owned(),
            line,
        }
    }

    fn bare(name: &str, text: &str, line: usize) -> ArgDoc {
        ArgDoc {
            quoted: false,
            ..arg(name, text, line)
        }
    }

    fn entry(name: &str, quoted: bool, text: &str) -> Option<Entry> {
        Some(Entry {
            name: name.to_owned(),
            quoted,
            text: text.to_owned(),
        })
    }

    #[test]
    fn the_arguments_section_gives_each_parameter_its_text() {
        let lines = [
            "Current weather for a city.",
            "",
            "# Arguments",
            "",
            "* `city` - The city name,",
            "  e.g. \"Oslo\".",
            "- `units`: `\"c\"` or `\"f\"`.",
            "* `days` — How many days ahead.",
            "* `r#type` -- The kind of report.",
            "- lang: A language code.",
        ];
        let docs = split_docs(&lines);
        assert_eq!(docs.description, "Current weather for a city.");
        assert_eq!(
            docs.args,
            vec![
                arg("city", "The city name, e.g. \"Oslo\".", 4),
                arg("units", "`\"c\"` or `\"f\"`.", 6),
                arg("days", "How many days ahead.", 7),
                arg("type", "The kind of report.", 8),
                bare("lang", "A language code.", 9),
            ]
        );
    }

    #[test]
    fn prose_bullets_are_not_entries() {
        let lines = [
            "Does it.",
            "# Arguments",
            "- all of them are strings",
            "  and this continues nothing",
            "- well-known names work",
            "- `x` The x.",
            "- y - The y.",
        ];
        assert_eq!(
            split_docs(&lines).args,
            vec![arg("x", "The x.", 5), bare("y", "The y.", 6)]
        );
    }

    #[test]
    fn the_section_ends_at_the_next_heading_and_the_rest_is_not_described() {
        let lines = [
            "Reads a file.",
            "## Parameters:",
            "* `path` - Where it is.",
            "# Errors",
            "* `path` - not an entry any more",
            "When the file is missing.",
        ];
        let docs = split_docs(&lines);
        assert_eq!(docs.description, "Reads a file.");
        assert_eq!(docs.args, vec![arg("path", "Where it is.", 2)]);
    }

    #[test]
    fn without_an_arguments_heading_all_is_description() {
        let docs = split_docs(&["Adds", "two numbers.", "", "Exactly."]);
        assert_eq!(docs.description, "Adds two numbers.\n\nExactly.");
        assert!(docs.args.is_empty());
    }

    #[test]
    fn a_heading_inside_a_code_block_is_code() {
        let lines = [
            "Runs code.",
            "",
            "```",
            "# Arguments",
            "let x = 1;",
            "```",
            "After.",
        ];
        let docs = split_docs(&lines);
        assert!(docs.args.is_empty());
        assert_eq!(
            docs.description,
            "Runs code.\n\n```\n# Arguments\nlet x = 1;\n```\nAfter."
        );
    }

    #[test]
    fn rendering_keeps_lists_headings_and_code_apart() {
        let lines = [
            "",
            "Searches the web",
            "for a query.",
            "",
            "Modes:",
            "- fast",
            "- deep, which",
            "  takes longer",
            "1. first",
            "# Notes",
            "Be brief.",
            "```json",
            "{\"q\": 1}",
            "",
            "  {}",
            "```",
            "",
        ];
        assert_eq!(
            render(&lines),
            "Searches the web for a query.\n\nModes:\n- fast\n- deep, which takes longer\n\
             1. first\n# Notes\nBe brief.\n```json\n{\"q\": 1}\n\n  {}\n```"
        );
    }

    #[test]
    fn unindent_removes_the_shared_indentation_only() {
        let mut lines = vec![
            " One.".to_owned(),
            "   ".to_owned(),
            "     code".to_owned(),
            " Two.".to_owned(),
        ];
        unindent(&mut lines);
        assert_eq!(lines, ["One.", "", "    code", "Two."]);
    }

    #[test]
    fn entries_accept_every_separator_and_refuse_bad_names() {
        assert_eq!(parse_entry("`a`: x"), entry("a", true, "x"));
        assert_eq!(parse_entry("`a` – x"), entry("a", true, "x"));
        assert_eq!(parse_entry("`a`-x"), entry("a", true, "x"));
        assert_eq!(parse_entry("`a`"), entry("a", true, ""));
        assert_eq!(parse_entry("a: x"), entry("a", false, "x"));
        assert_eq!(parse_entry("a — x"), entry("a", false, "x"));
        assert_eq!(parse_entry("a-x"), None);
        assert_eq!(parse_entry("a x"), None);
        assert_eq!(parse_entry("`a b` - x"), None);
        assert_eq!(parse_entry("`unclosed - x"), None);
    }

    #[test]
    fn an_entry_may_continue_on_the_next_lines() {
        let lines = ["# Arguments", "* `query` -", "  what to search", "  for"];
        assert_eq!(
            split_docs(&lines).args,
            vec![arg("query", "what to search for", 1)]
        );
    }
}
