//! A small, hardened XML reader: bytes → element tree, with a size limit, a depth limit,
//! no DOCTYPE and no entities beyond XML's five predefined ones and character references.
//! Names are kept without namespace prefix; closing tags match their opening tags without
//! regard to case (lenient input, SPEC section 4).

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use std::collections::HashSet;
use worklane_domain::DomainError;

/// Hard limits applied before and while parsing a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest accepted message, in bytes.
    pub max_bytes: usize,
    /// The deepest accepted element nesting (GTLMessages counts as 1).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_depth: 16,
        }
    }
}

/// One element: its local name, its attributes (local names, values unescaped), its text
/// (all text and CDATA joined) and its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The element's name, compared without regard to case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// The parameter whole-message format errors name.
pub(crate) const MESSAGE: &str = "GTLMessages";

fn malformed(problem: impl std::fmt::Display) -> DomainError {
    DomainError::invalid(MESSAGE, problem)
}

/// Parses one XML document into its root element.
pub(crate) fn parse(bytes: &[u8], limits: &Limits) -> Result<Element, DomainError> {
    if bytes.len() > limits.max_bytes {
        return Err(malformed(format!(
            "the message is {} bytes long, at most {} allowed",
            bytes.len(),
            limits.max_bytes
        )));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| malformed(format!("the message is not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    // End names are checked below, without regard to case.
    reader.config_mut().check_end_names = false;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| malformed(format!("not well-formed XML at byte {at}: {e}")))?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                if stack.len() + 1 > limits.max_depth {
                    return Err(malformed(format!(
                        "elements are nested deeper than {} levels",
                        limits.max_depth
                    )));
                }
                let attributes = check_attributes(&e)?;
                stack.push(Element {
                    name: e.local_name().as_ref().to_owned(),
                    attributes,
                    ..Default::default()
                });
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return Err(malformed("content after the root element"));
                }
                if stack.len() + 1 > limits.max_depth {
                    return Err(malformed(format!(
                        "elements are nested deeper than {} levels",
                        limits.max_depth
                    )));
                }
                let attributes = check_attributes(&e)?;
                let el = Element {
                    name: e.local_name().as_ref().to_owned(),
                    attributes,
                    ..Default::default()
                };
                attach(&mut stack, &mut root, el);
            }
            Event::End(e) => {
                let name = e.local_name().as_ref().to_owned();
                let Some(el) = stack.pop() else {
                    return Err(malformed(format!(
                        "closing tag </{name}> without opening tag"
                    )));
                };
                if !el.is(&name) {
                    return Err(malformed(format!("<{}> is closed by </{name}>", el.name)));
                }
                attach(&mut stack, &mut root, el);
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content())?,
            Event::CData(c) => push_text(&mut stack, &c.xml10_content())?,
            Event::GeneralRef(r) => {
                let c = resolve_ref(&r)?;
                push_text(&mut stack, c.encode_utf8(&mut [0; 4]))?;
            }
            Event::DocType(_) => return Err(malformed("DOCTYPE is not allowed")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(format!("<{}> is never closed", open.name)));
    }
    root.ok_or_else(|| malformed("the message is empty"))
}

/// Reads a start tag's attributes (namespace declarations left out), refusing what XML
/// forbids: the same name twice, malformed ones (no `=`, no quotes), entities other than
/// the predefined ones. The GTLMessages reader ignores attributes; transformations read
/// them. Names are compared as written (XML names are case-sensitive, and `a:x` and
/// `b:x` are different names).
fn check_attributes(tag: &BytesStart<'_>) -> Result<Vec<(String, String)>, DomainError> {
    let element = tag.name();
    let element = element.0.to_owned();
    let mut seen = HashSet::new();
    let mut attributes = Vec::new();
    // Duplicates are checked here, not by quick-xml, so the error can name the attribute.
    for attr in tag.attributes().with_checks(false) {
        let attr = attr.map_err(|e| malformed(format!("bad attribute in <{element}>: {e}")))?;
        let name = attr.key.0.to_owned();
        if !seen.insert(name.clone()) {
            return Err(malformed(format!(
                "attribute {name} appears twice in <{element}>"
            )));
        }
        if name == "xmlns" || name.starts_with("xmlns:") {
            continue;
        }
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| malformed(format!("bad value of attribute {name} in <{element}>: {e}")))?;
        let local = attr.key.local_name().as_ref().to_owned();
        attributes.push((local, value.into_owned()));
    }
    Ok(attributes)
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), DomainError> {
    match stack.last_mut() {
        Some(el) => {
            el.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(malformed("text outside the root element")),
    }
}

/// Resolves `&name;`: character references and the five predefined entities only, so no
/// document can make the parser expand anything it defines itself.
fn resolve_ref(r: &BytesRef<'_>) -> Result<char, DomainError> {
    if let Some(c) = r
        .resolve_char_ref()
        .map_err(|e| malformed(format!("bad character reference: {e}")))?
    {
        return Ok(c);
    }
    let name: &str = &r.xml10_content();
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "apos" => Ok('\''),
        "quot" => Ok('"'),
        other => Err(malformed(format!("entity &{other}; is not allowed"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Element, DomainError> {
        parse(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn builds_the_tree_and_resolves_predefined_entities() {
        let el =
            p("<?xml version='1.0'?><!-- hi --><a><b>x &amp; &#65;<![CDATA[<c>]]></b><c/></A>")
                .unwrap();
        assert_eq!(el.name, "a");
        assert_eq!(el.children[0].text, "x & A<c>");
        assert_eq!(el.children[1].name, "c");
    }

    #[test]
    fn refuses_doctype_custom_entities_and_depth_and_size() {
        let doctype = "<!DOCTYPE a [<!ENTITY x \"boom\">]><a>&x;</a>";
        assert!(p(doctype).unwrap_err().message.contains("DOCTYPE"));
        assert!(p("<a>&x;</a>").unwrap_err().message.contains("entity"));
        let deep = format!("{}{}", "<a>".repeat(17), "</a>".repeat(17));
        assert!(p(&deep).unwrap_err().message.contains("nested"));
        let big = vec![b' '; 1024 * 1024 + 1];
        assert!(parse(&big, &Limits::default())
            .unwrap_err()
            .message
            .contains("bytes long"));
    }

    #[test]
    fn refuses_duplicate_attributes_naming_them() {
        for (doc, name) in [
            ("<a><b x=\"1\" y='2' x=\"3\">t</b></a>", "x"),
            ("<a><b/><c id='1' id='1'/></a>", "id"),
            ("<a xmlns:p='u' p:k='1' p:k='2'></a>", "p:k"),
        ] {
            let e = p(doc).unwrap_err();
            assert_eq!(e.code, worklane_domain::ErrorCode::InvalidFormat, "{doc}");
            assert_eq!(e.parameters, vec![MESSAGE.to_owned()], "{doc}");
            assert!(
                e.message
                    .contains(&format!("attribute {name} appears twice")),
                "{doc}: {}",
                e.message
            );
        }
        // Different names (by case, or by prefix) are allowed, as XML says.
        assert!(p("<a x='1' X='2' p:y='1' q:y='2'><b k='1'/><b k='2'/></a>").is_ok());
    }

    #[test]
    fn refuses_malformed_attributes() {
        for doc in ["<a x></a>", "<a x=1/>", "<a><b x='1' y></b></a>"] {
            let e = p(doc).unwrap_err();
            assert!(e.message.contains("bad attribute"), "{doc}: {}", e.message);
            assert_eq!(e.parameters, vec![MESSAGE.to_owned()], "{doc}");
        }
    }

    #[test]
    fn refuses_malformed_documents() {
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "text",
            "<a>x</a>tail",
            "\u{0}",
        ] {
            let e = p(bad).unwrap_err();
            assert_eq!(e.parameters, vec![MESSAGE.to_owned()], "{bad:?}");
        }
        assert!(parse(&[0xff, 0xfe], &Limits::default()).is_err());
    }
}
