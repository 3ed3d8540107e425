//! Transformations (SPEC section 12): a source system's own XML → GTLMessages before a
//! message is read, and GTLMessages → the source system's format before one is sent.
//!
//! A transformation is a [Rhai](https://rhai.rs) script, compiled once when the capture
//! point's configuration is read (errors name the file, line and column). It sees the
//! document's root element as `input` (a [`Node`]: its `name`, and the functions below), and
//! returns the element to write (built with `element(...)` and `add(...)`) or the finished
//! text. It runs sandboxed: the engine has no file, network, module or `eval`
//! access, and every run is bounded in time, operations, call depth, string, array and map
//! sizes; its input and output are bounded by the capture point's message size and depth.
//!
//! Script functions (element names are matched without regard to case, as GTLMessages
//! input is): `node.child(name)` (the first such child, or `()`), `node.children(name)`,
//! `node.children()`, `node.text()`, `node.text(name)` (a child's text, `""` when absent),
//! `node.attr(name)`, `node.has(name)`, `element(name)`, `element(name, text)`,
//! `node.add(child)`, `node.add(name, text)`, `node.add_nonempty(name, text)`,
//! `node.set_attr(name, value)`, `node.set_text(text)`. A child that is `()` is skipped
//! by `add`, so optional parts need no `if`.

use crate::codec::{escape_into, is_xml_name, parse_tree, Element, Limits};
use rhai::{Array, Dynamic, Engine, EvalAltResult, Position, Scope, AST};
use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a transformation may run on one message, unless configured otherwise.
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_millis(100);
/// The most script operations one run may take (a second bound beside time).
const MAX_OPERATIONS: u64 = 5_000_000;
/// How often (in operations) the time limit is checked.
const CLOCK_EVERY: u64 = 256;
/// The deepest element nesting a transformation may write.
const MAX_OUTPUT_DEPTH: usize = 64;

/// Which way a transformation converts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The source system's format → GTLMessages.
    Inbound,
    /// GTLMessages → the source system's format.
    Outbound,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// The bounds a transformation runs within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformLimits {
    /// The largest input and output, in bytes, and the deepest input nesting.
    pub document: Limits,
    /// The longest one run may take.
    pub time: Duration,
}

/// Why a transformation did not produce a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {direction} transformation {file} failed: {reason}")]
pub struct TransformError {
    pub direction: &'static str,
    pub file: String,
    pub reason: String,
}

/// A compiled transformation, ready to run on many messages at once.
#[derive(Clone)]
pub struct Transform {
    file: String,
    direction: Direction,
    limits: TransformLimits,
    engine: Arc<Engine>,
    ast: Arc<AST>,
}

impl std::fmt::Debug for Transform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transform")
            .field("file", &self.file)
            .field("direction", &self.direction)
            .field("limits", &self.limits)
            .finish()
    }
}

thread_local! {
    /// When the run on this thread must stop (a run never awaits, so it stays on one thread).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

impl Transform {
    /// Reads and compiles the script at `path`; the error names the file and the line.
    pub fn load(
        path: &Path,
        direction: Direction,
        limits: TransformLimits,
    ) -> Result<Self, String> {
        let source = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot be read: {e}", path.display()))?;
        Self::compile(&path.display().to_string(), &source, direction, limits)
    }

    /// Compiles `source`, named `file` in errors.
    pub fn compile(
        file: &str,
        source: &str,
        direction: Direction,
        limits: TransformLimits,
    ) -> Result<Self, String> {
        let engine = sandbox(&limits);
        let ast = engine
            .compile(source)
            .map_err(|e| format!("{file}{}: {}", at(e.1), e.0))?;
        Ok(Self {
            file: file.to_owned(),
            direction,
            limits,
            engine: Arc::new(engine),
            ast: Arc::new(ast),
        })
    }

    /// The script's file, as configured.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Transforms one document.
    pub fn apply(&self, input: &[u8]) -> Result<Vec<u8>, TransformError> {
        let fail = |reason: String| TransformError {
            direction: self.direction.name(),
            file: self.file.clone(),
            reason,
        };
        let tree = parse_tree(input, &self.limits.document)
            .map_err(|e| fail(format!("its input is not readable: {}", e.message)))?;
        let mut scope = Scope::new();
        scope.push("input", Node::from_element(&tree));
        DEADLINE.with(|d| d.set(Some(Instant::now() + self.limits.time)));
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &self.ast);
        DEADLINE.with(|d| d.set(None));
        let out = result.map_err(|e| fail(runtime_error(&e, self.limits.time)))?;
        let max = self.limits.document.max_bytes;
        let text = if out.is_string() {
            out.into_string().expect("a string")
        } else if out.is::<Node>() {
            let mut text = String::with_capacity(input.len() * 2);
            write_element(&out.cast::<Node>(), &mut text, 0, max).map_err(fail)?;
            text
        } else {
            return Err(fail(format!(
                "it returned {}, not an element or a string",
                out.type_name()
            )));
        };
        if text.len() > self.limits.document.max_bytes {
            return Err(fail(format!(
                "its output is {} bytes long, at most {} allowed",
                text.len(),
                self.limits.document.max_bytes
            )));
        }
        Ok(text.into_bytes())
    }
}

fn at(p: Position) -> String {
    match (p.line(), p.position()) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

fn runtime_error(e: &EvalAltResult, time: Duration) -> String {
    let pos = e.position();
    let line = match pos.line() {
        Some(l) => format!("line {l}: "),
        None => String::new(),
    };
    match e {
        EvalAltResult::ErrorTerminated(..) => {
            format!("{line}it ran longer than {} ms", time.as_millis())
        }
        EvalAltResult::ErrorTooManyOperations(..) => {
            format!("{line}it took more than {MAX_OPERATIONS} operations")
        }
        _ => {
            // Rhai appends the position to its messages; the line is already named.
            let text = e.to_string();
            let text = text
                .rsplit_once(" (line ")
                .map_or(text.as_str(), |(t, _)| t);
            format!("{line}{text}")
        }
    }
}

/// An engine that can compute and build strings, arrays and maps, and nothing else.
fn sandbox(limits: &TransformLimits) -> Engine {
    // `no_module` (in Cargo.toml) removes `import` and the file module resolver; the
    // standard packages have no file, network, process or clock access.
    let mut e = Engine::new();
    e.disable_symbol("eval");
    e.on_print(|s| tracing::debug!(target: "worklane::transform", "{s}"));
    e.on_debug(|s, _, pos| tracing::debug!(target: "worklane::transform", ?pos, "{s}"));
    e.set_max_operations(MAX_OPERATIONS);
    e.set_max_call_levels(32);
    e.set_max_expr_depths(64, 32);
    e.set_max_string_size(limits.document.max_bytes);
    e.set_max_array_size(100_000);
    e.set_max_map_size(10_000);
    e.on_progress(|ops| {
        if ops % CLOCK_EVERY != 0 {
            return None;
        }
        let late = DEADLINE.with(|d| d.get().is_some_and(|t| Instant::now() > t));
        late.then(|| Dynamic::from("time limit"))
    });
    register_xml(&mut e);
    e
}

/// An element as scripts see it: a value (copied on change, shared until then), so handing
/// a subtree around copies nothing.
#[derive(Debug, Clone, Default)]
pub struct Node(Arc<NodeData>);

#[derive(Debug, Clone, Default)]
struct NodeData {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn new(name: &str, text: String) -> Self {
        Self(Arc::new(NodeData {
            name: name.to_owned(),
            text,
            ..Default::default()
        }))
    }

    fn from_element(e: &Element) -> Self {
        Self(Arc::new(NodeData {
            name: e.name.clone(),
            attrs: e.attributes.clone(),
            text: e.text.trim().to_owned(),
            children: e.children.iter().map(Self::from_element).collect(),
        }))
    }

    fn child(&self, name: &str) -> Option<&Node> {
        self.0
            .children
            .iter()
            .find(|c| c.0.name.eq_ignore_ascii_case(name))
    }

    fn attr(&self, name: &str) -> String {
        self.0
            .attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    fn data(&mut self) -> &mut NodeData {
        Arc::make_mut(&mut self.0)
    }

    fn push(&mut self, child: Dynamic) -> Result<(), Box<EvalAltResult>> {
        if child.is_unit() {
            return Ok(());
        }
        let type_name = child.type_name();
        match child.try_cast::<Node>() {
            Some(c) => {
                self.data().children.push(c);
                Ok(())
            }
            None => Err(format!("add takes an element, not {type_name}").into()),
        }
    }
}

/// A value as element text: `()` is empty, everything else as written.
fn as_text(v: &Dynamic) -> String {
    if v.is_unit() {
        String::new()
    } else {
        v.to_string()
    }
}

fn or_unit(n: Option<&Node>) -> Dynamic {
    n.map_or(Dynamic::UNIT, |n| Dynamic::from(n.clone()))
}

fn register_xml(e: &mut Engine) {
    e.register_type_with_name::<Node>("Element");
    e.register_get("name", |n: &mut Node| n.0.name.clone());
    e.register_fn("child", |n: &mut Node, name: &str| or_unit(n.child(name)));
    e.register_fn("child", |_: (), _: &str| Dynamic::UNIT);
    e.register_fn("children", |n: &mut Node, name: &str| -> Array {
        n.0.children
            .iter()
            .filter(|c| c.0.name.eq_ignore_ascii_case(name))
            .map(|c| Dynamic::from(c.clone()))
            .collect()
    });
    e.register_fn("children", |n: &mut Node| -> Array {
        n.0.children
            .iter()
            .map(|c| Dynamic::from(c.clone()))
            .collect()
    });
    e.register_fn("children", |_: ()| Array::new());
    e.register_fn("children", |_: (), _: &str| Array::new());
    e.register_fn("text", |n: &mut Node| n.0.text.clone());
    e.register_fn("text", |_: ()| String::new());
    e.register_fn("text", |n: &mut Node, name: &str| {
        n.child(name).map(|c| c.0.text.clone()).unwrap_or_default()
    });
    e.register_fn("text", |_: (), _: &str| String::new());
    e.register_fn("has", |n: &mut Node, name: &str| n.child(name).is_some());
    e.register_fn("has", |_: (), _: &str| false);
    e.register_fn("attr", |n: &mut Node, name: &str| n.attr(name));
    e.register_fn("attr", |_: (), _: &str| String::new());
    e.register_fn("element", |name: &str| Node::new(name, String::new()));
    e.register_fn("element", |name: &str, text: Dynamic| {
        Node::new(name, as_text(&text))
    });
    e.register_fn("add", |n: &mut Node, child: Dynamic| n.push(child));
    e.register_fn("add", |n: &mut Node, name: &str, text: Dynamic| {
        if !text.is_unit() {
            n.data().children.push(Node::new(name, as_text(&text)));
        }
    });
    e.register_fn("add_nonempty", |n: &mut Node, name: &str, text: Dynamic| {
        let t = as_text(&text);
        if !t.trim().is_empty() {
            n.data().children.push(Node::new(name, t));
        }
    });
    e.register_fn("set_attr", |n: &mut Node, name: &str, value: Dynamic| {
        let value = as_text(&value);
        let attrs = &mut n.data().attrs;
        match attrs.iter_mut().find(|(k, _)| k == name) {
            Some(a) => a.1 = value,
            None => attrs.push((name.to_owned(), value)),
        }
    });
    e.register_fn("set_text", |n: &mut Node, text: Dynamic| {
        n.data().text = as_text(&text);
    });
}

/// Writes an element the script built: indented where it has only elements inside. Stops
/// once `max` bytes are written (a shared subtree can stand for much more text).
fn write_element(node: &Node, out: &mut String, depth: usize, max: usize) -> Result<(), String> {
    if depth >= MAX_OUTPUT_DEPTH {
        return Err(format!(
            "its output nests deeper than {MAX_OUTPUT_DEPTH} levels"
        ));
    }
    if out.len() > max {
        return Err(format!("its output is longer than {max} bytes"));
    }
    let n = &node.0;
    if !is_xml_name(&n.name) {
        return Err(format!("{:?} is not an element name it can write", n.name));
    }
    for _ in 0..depth {
        out.push_str("  ");
    }
    out.push('<');
    out.push_str(&n.name);
    for (k, v) in &n.attrs {
        if !is_xml_name(k) {
            return Err(format!("{k:?} is not an attribute name it can write"));
        }
        out.push(' ');
        out.push_str(k);
        out.push_str("=\"");
        let mut value = String::new();
        escape_into(&mut value, v);
        out.push_str(&value.replace('"', "&quot;"));
        out.push('"');
    }
    if n.text.is_empty() && n.children.is_empty() {
        out.push_str("/>\n");
        return Ok(());
    }
    out.push('>');
    escape_into(out, &n.text);
    if !n.children.is_empty() {
        out.push('\n');
        for c in &n.children {
            write_element(c, out, depth + 1, max)?;
        }
        for _ in 0..depth {
            out.push_str("  ");
        }
    }
    out.push_str("</");
    out.push_str(&n.name);
    out.push_str(">\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> TransformLimits {
        TransformLimits {
            document: Limits::default(),
            time: DEFAULT_TIME_LIMIT,
        }
    }

    fn t(source: &str) -> Transform {
        Transform::compile("test.rhai", source, Direction::Inbound, limits()).unwrap()
    }

    #[test]
    fn reads_the_tree_and_writes_an_element() {
        let x = t(r#"
            let m = element("GTLMessages");
            let c = element("CreateTask");
            c.add("CaptureId", input.attr("id"));
            c.add("priority", input.child("Urgency").text());
            c.add_nonempty("category", input.text("Missing"));
            c.add(input.child("Missing"));
            m.add(c);
            m
        "#);
        let out = x
            .apply(br#"<Order id="o-1&amp;2"><Urgency> 5 </Urgency></Order>"#)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<GTLMessages>\n  <CreateTask>\n    <CaptureId>o-1&amp;2</CaptureId>\n    <priority>5</priority>\n  </CreateTask>\n</GTLMessages>\n"
        );
    }

    #[test]
    fn compile_errors_name_the_file_and_line() {
        let e = Transform::compile(
            "x.rhai",
            "let a = 1;\nlet = ;",
            Direction::Inbound,
            limits(),
        )
        .unwrap_err();
        assert!(e.starts_with("x.rhai:2:"), "{e}");
    }

    #[test]
    fn runtime_errors_name_the_line() {
        let e = t("let a = 1;\nthrow \"no order number\";")
            .apply(b"<a/>")
            .unwrap_err();
        assert!(e.reason.contains("line 2"), "{e}");
        assert!(e.to_string().contains("no order number"), "{e}");
        assert!(e.to_string().contains("test.rhai"), "{e}");
    }

    #[test]
    fn a_run_is_stopped_at_its_time_or_operation_limit() {
        let started = Instant::now();
        let e = t("let n = 0; loop { n += 1; }").apply(b"<a/>").unwrap_err();
        assert!(
            e.reason.contains("ran longer") || e.reason.contains("operations"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn outputs_are_bounded_and_checked() {
        let big = t(r#"let s = "x"; loop { s += s; }"#)
            .apply(b"<a/>")
            .unwrap_err();
        assert!(!big.reason.is_empty());
        let bad = t("42").apply(b"<a/>").unwrap_err();
        assert!(bad.reason.contains("not an element"), "{bad}");
        let bad = t(r#"element("1x")"#).apply(b"<a/>").unwrap_err();
        assert!(bad.reason.contains("element name"), "{bad}");
    }

    #[test]
    fn no_file_module_or_eval_access() {
        for src in [
            r#"import "x" as y; 1"#,
            r#"eval("1")"#,
            r#"open_file("/etc/passwd")"#,
        ] {
            let compiled = Transform::compile("s.rhai", src, Direction::Inbound, limits());
            if let Ok(x) = compiled {
                assert!(x.apply(b"<a/>").is_err(), "{src} ran");
            }
        }
    }

    #[test]
    fn unreadable_input_is_an_error_not_a_panic() {
        let x = t("input");
        for bad in [&b"<a>"[..], b"<!DOCTYPE a><a/>", b"\xff\xfe"] {
            assert!(x.apply(bad).is_err());
        }
    }
}
