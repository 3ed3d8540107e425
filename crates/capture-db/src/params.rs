//! The `?'Name'` parameter syntax of seed 000: finds each parameter outside string
//! literals, quoted identifiers and comments, and rewrites it to the driver's placeholder.
//! Pure: no I/O. Values are never pasted into the SQL text; they are bound later in the
//! order [`Parsed::binds`] gives.

use std::fmt;

/// The SQL flavour a statement is written in: decides the placeholder and the lexical
/// rules (backslash escapes, `#` comments, dollar quoting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `$1, $2, ...`; dollar-quoted strings; `E'...'` escapes.
    Postgres,
    /// `?`; backslash escapes in quotes; `#` comments; backtick identifiers.
    MySql,
    /// `?`.
    Sqlite,
    /// `?` (whatever the driver behind it speaks; standard SQL lexing).
    Odbc,
}

/// A statement rewritten for its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The SQL with every `?'Name'` replaced by the driver's placeholder.
    pub sql: String,
    /// The parameter name bound at each placeholder, in placeholder order.
    pub binds: Vec<String>,
}

impl Parsed {
    /// The distinct parameter names, in first-use order.
    pub fn names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for b in &self.binds {
            if !out.contains(&b.as_str()) {
                out.push(b);
            }
        }
        out
    }
}

/// Why a statement's text cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// Character offset where the problem starts.
    pub at: usize,
    pub problem: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.problem, self.at)
    }
}

/// Finds the `?'Name'` parameters of `sql` and rewrites them for `dialect`.
pub fn parse(sql: &str, dialect: Dialect) -> Result<Parsed, ParseError> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut binds: Vec<String> = Vec::new();
    let mut i = 0;
    let err = |at: usize, problem: &str| ParseError {
        at,
        problem: problem.to_owned(),
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\'' => {
                // PostgreSQL interprets backslashes only in E'...' strings.
                let prev_e = i > 0 && matches!(chars[i - 1], 'e' | 'E');
                let backslash = match dialect {
                    Dialect::MySql => true,
                    Dialect::Postgres => prev_e,
                    _ => false,
                };
                let end = skip_quoted(&chars, i, '\'', backslash)
                    .ok_or_else(|| err(i, "unterminated string literal"))?;
                out.extend(&chars[i..end]);
                i = end;
            }
            '"' => {
                let end = skip_quoted(&chars, i, '"', dialect == Dialect::MySql)
                    .ok_or_else(|| err(i, "unterminated quoted identifier"))?;
                out.extend(&chars[i..end]);
                i = end;
            }
            '`' if dialect == Dialect::MySql => {
                let end = skip_quoted(&chars, i, '`', false)
                    .ok_or_else(|| err(i, "unterminated quoted identifier"))?;
                out.extend(&chars[i..end]);
                i = end;
            }
            '-' if next == Some('-') => {
                let end = line_end(&chars, i);
                out.extend(&chars[i..end]);
                i = end;
            }
            '#' if dialect == Dialect::MySql => {
                let end = line_end(&chars, i);
                out.extend(&chars[i..end]);
                i = end;
            }
            '/' if next == Some('*') => {
                let end = block_comment_end(&chars, i, dialect == Dialect::Postgres)
                    .ok_or_else(|| err(i, "unterminated comment"))?;
                out.extend(&chars[i..end]);
                i = end;
            }
            '$' if dialect == Dialect::Postgres => {
                if next.is_some_and(|d| d.is_ascii_digit()) {
                    return Err(err(
                        i,
                        "positional parameters ($1) are not supported: write ?'Name'",
                    ));
                }
                match dollar_quote(&chars, i) {
                    DollarQuote::None => {
                        out.push(c);
                        i += 1;
                    }
                    DollarQuote::Closed(end) => {
                        out.extend(&chars[i..end]);
                        i = end;
                    }
                    DollarQuote::Unterminated(tag) => {
                        // PostgreSQL refuses it too. Giving up here (rather than reading
                        // the `$` as a plain character and looking again at the next one)
                        // keeps parsing linear: no part of the text is searched twice.
                        return Err(err(
                            i,
                            &format!("unterminated dollar-quoted string: no closing {tag}"),
                        ));
                    }
                }
            }
            '?' => {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if chars.get(j) == Some(&'\'') {
                    let close = chars[j + 1..]
                        .iter()
                        .position(|&c| c == '\'')
                        .map(|p| j + 1 + p)
                        .ok_or_else(|| err(i, "unterminated parameter name"))?;
                    let name: String = chars[j + 1..close].iter().collect();
                    let name = name.trim();
                    if name.is_empty() {
                        return Err(err(i, "empty parameter name"));
                    }
                    if name.chars().any(|c| c.is_control()) {
                        return Err(err(i, "parameter name contains a control character"));
                    }
                    binds.push(name.to_owned());
                    match dialect {
                        Dialect::Postgres => {
                            out.push('$');
                            out.push_str(&binds.len().to_string());
                        }
                        _ => out.push('?'),
                    }
                    i = close + 1;
                } else if dialect == Dialect::Postgres {
                    // A PostgreSQL operator (jsonb `?`, `?|`, `?&`), not a parameter.
                    out.push(c);
                    i += 1;
                } else {
                    return Err(err(i, "a bare ? is not a parameter here: write ?'Name'"));
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(Parsed { sql: out, binds })
}

/// Index just past the quote that closes the one at `start`; a doubled quote is an
/// escaped quote, and so is a backslash-escaped one where the dialect says so.
fn skip_quoted(chars: &[char], start: usize, quote: char, backslash: bool) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i];
        if backslash && c == '\\' {
            i += 2;
            continue;
        }
        if c == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

fn line_end(chars: &[char], start: usize) -> usize {
    chars[start..]
        .iter()
        .position(|&c| c == '\n')
        .map_or(chars.len(), |p| start + p)
}

fn block_comment_end(chars: &[char], start: usize, nested: bool) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < chars.len() {
        if chars[i] == '/' && chars[i + 1] == '*' && (nested || depth == 0) {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars[i + 1] == '/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Some(i);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// What a `$` of a PostgreSQL statement starts.
enum DollarQuote {
    /// No dollar quote: part of an identifier (`a$b`), or no tag follows.
    None,
    /// `$tag$ ... $tag$` (or `$$ ... $$`): the index just past the closing tag.
    Closed(usize),
    /// A dollar quote whose closing tag never comes; the tag.
    Unterminated(String),
}

/// A character PostgreSQL allows in a dollar-quote tag (the first may not be a digit;
/// the caller has refused `$1` already).
fn is_tag_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric() || !c.is_ascii()
}

/// Reads the dollar quote that may start at `start` (a `$`). The search for the closing
/// tag stops at its first occurrence, so each character is looked at a bounded number of
/// times: a candidate closing tag is compared only where a `$` is, and a partial match
/// runs over tag characters, none of which is a `$`.
fn dollar_quote(chars: &[char], start: usize) -> DollarQuote {
    // An identifier character before `$` means `$` is part of a name (e.g. `a$b$`).
    if start > 0 && is_tag_char(chars[start - 1]) {
        return DollarQuote::None;
    }
    let mut j = start + 1;
    while j < chars.len() && is_tag_char(chars[j]) {
        j += 1;
    }
    if chars.get(j) != Some(&'$') {
        return DollarQuote::None;
    }
    let tag = &chars[start..=j];
    let mut k = j + 1;
    while k < chars.len() {
        if chars[k] == '$' && chars[k..].starts_with(tag) {
            return DollarQuote::Closed(k + tag.len());
        }
        k += 1;
    }
    DollarQuote::Unterminated(tag.iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sql: &str) -> Parsed {
        parse(sql, Dialect::Postgres).expect("parses")
    }

    #[test]
    fn rewrites_seed_example_for_each_dialect() {
        let sql = "update cases set caseTrackingId=?'InteractionId', status='submitted' \
                   where caseId=?'ExternalId'";
        let p = pg(sql);
        assert_eq!(
            p.sql,
            "update cases set caseTrackingId=$1, status='submitted' where caseId=$2"
        );
        assert_eq!(p.binds, ["InteractionId", "ExternalId"]);
        for d in [Dialect::MySql, Dialect::Sqlite, Dialect::Odbc] {
            let p = parse(sql, d).expect("parses");
            assert_eq!(
                p.sql,
                "update cases set caseTrackingId=?, status='submitted' where caseId=?"
            );
            assert_eq!(p.binds, ["InteractionId", "ExternalId"]);
        }
    }

    #[test]
    fn white_space_after_question_mark_is_allowed() {
        let p = pg("update case_updates set status='applied' where caseId=? 'ExternalId'");
        assert_eq!(
            p.sql,
            "update case_updates set status='applied' where caseId=$1"
        );
        assert_eq!(p.binds, ["ExternalId"]);
    }

    #[test]
    fn question_marks_inside_literals_identifiers_and_comments_are_left_alone() {
        let sql = "select '?''Name''', \"col?'x'\", $q$ ?'In' $q$ -- ?'Comment'\n\
                   from t /* ?'Block' /* nested ?'x' */ */ where a = ?'A'";
        let p = pg(sql);
        assert_eq!(p.binds, ["A"]);
        assert!(p.sql.ends_with("where a = $1"));
        assert!(p.sql.contains("'?''Name'''"));
        assert!(p.sql.contains("-- ?'Comment'\n"));

        let my = parse(
            "select 'it\\'s ?''x''', `a?'b'` # ?'c'\n, ?'D'",
            Dialect::MySql,
        )
        .expect("parses");
        assert_eq!(my.binds, ["D"]);
        assert_eq!(my.sql, "select 'it\\'s ?''x''', `a?'b'` # ?'c'\n, ?");
    }

    #[test]
    fn postgres_backslash_only_escapes_in_e_strings() {
        // 'C:\' is a complete literal in standard SQL; the parameter after it is found.
        let p = pg("select 'C:\\' , ?'P'");
        assert_eq!(p.binds, ["P"]);
        let p = pg("select E'it\\'s ?''x''' , ?'P'");
        assert_eq!(p.binds, ["P"]);
    }

    #[test]
    fn repeated_names_bind_each_occurrence() {
        let p = pg("update t set a=?'X', b=?'X' where c=?'Y'");
        assert_eq!(p.binds, ["X", "X", "Y"]);
        assert_eq!(p.names(), ["X", "Y"]);
        assert_eq!(p.sql, "update t set a=$1, b=$2 where c=$3");
    }

    #[test]
    fn postgres_question_mark_operator_is_not_a_parameter() {
        let p = pg("select * from t where doc ? 'key' and id = ?'Id'");
        // `? 'key'` looks like a parameter: white space after ? is allowed by the seed.
        assert_eq!(p.binds, ["key", "Id"]);
        let p = pg("select * from t where doc ?| array['a'] and id = ?'Id'");
        assert_eq!(p.binds, ["Id"]);
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(parse("select 'open", Dialect::Sqlite).is_err());
        assert!(parse("select ?'open", Dialect::Sqlite).is_err());
        assert!(parse("select ?''", Dialect::Sqlite).is_err());
        let e = parse("select ? from t", Dialect::Sqlite).expect_err("bare ?");
        assert!(e.problem.contains("bare ?"), "{e}");
        let e = parse("select $1", Dialect::Postgres).expect_err("positional");
        assert!(e.problem.contains("positional"), "{e}");
        assert!(parse("select /* open", Dialect::Odbc).is_err());
    }

    #[test]
    fn dollar_quotes_nested_and_adjacent_are_literals() {
        let p = pg("select $fn$ begin ?'A'; $x$ ?'B' $x$; end $fn$, $$?'C'$$$t$?'D'$t$, ?'E'");
        assert_eq!(p.binds, ["E"]);
        assert!(
            p.sql.starts_with(
                "select $fn$ begin ?'A'; $x$ ?'B' $x$; end $fn$, $$?'C'$$$t$?'D'$t$, $1"
            ),
            "{}",
            p.sql
        );
        // `$` inside a name, or with no closing `$` of a tag, is no dollar quote.
        let p = pg("select a$b$ , x$ from t where c = ?'P'");
        assert_eq!(p.binds, ["P"]);
        // Non-ASCII tags, as PostgreSQL allows.
        let p = pg("select $größe$ ?'x' $größe$, ?'Y'");
        assert_eq!(p.binds, ["Y"]);
    }

    #[test]
    fn unterminated_dollar_quote_is_refused_naming_tag_and_position() {
        let e = parse("select 1, $body$ ?'X' $bod$", Dialect::Postgres).expect_err("open");
        assert_eq!(e.at, 10);
        assert!(
            e.problem.contains("unterminated dollar-quoted string"),
            "{e}"
        );
        assert!(e.problem.contains("$body$"), "{e}");
        let e = parse("select $$ never closed", Dialect::Postgres).expect_err("open");
        assert_eq!(
            (e.at, e.problem.ends_with("no closing $$")),
            (7, true),
            "{e}"
        );
        // Other dialects have no dollar quotes.
        assert!(parse("select $body$ ?'X'", Dialect::Sqlite).is_ok());
    }

    /// A statement full of dollar quotes that never close: refused at the first one, in one
    /// pass. A parser that looked for each tag's end again would take minutes here, so the
    /// suite would visibly hang (no timing is asserted).
    #[test]
    fn a_megabyte_of_unterminated_dollar_quotes_is_refused_in_one_pass() {
        let mut sql = String::from("select ");
        let mut n = 0;
        while sql.len() < 1024 * 1024 {
            sql.push_str(&format!("$t{n}$ "));
            n += 1;
        }
        let e = parse(&sql, Dialect::Postgres).expect_err("unterminated");
        assert_eq!(e.at, 7);
        assert!(e.problem.contains("$t0$"), "{e}");
    }

    #[test]
    fn non_ascii_text_survives() {
        let p = parse(
            "update t set note='größe ?' where id=?'Id'",
            Dialect::Sqlite,
        )
        .expect("parses");
        assert_eq!(p.sql, "update t set note='größe ?' where id=?");
    }
}
