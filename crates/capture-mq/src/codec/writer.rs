//! Writes GTLMessages documents: indented, UTF-8, every element closed by its own name.

use super::datetime;
use jiff::tz::TimeZone;
use worklane_domain::Timestamp;

/// An XML text being built.
pub(crate) struct XmlWriter<'a> {
    out: String,
    depth: usize,
    tz: &'a TimeZone,
}

impl<'a> XmlWriter<'a> {
    /// Starts `<GTLMessages><message>`.
    pub fn message(name: &str, tz: &'a TimeZone) -> Self {
        let mut w = Self {
            out: String::with_capacity(512),
            depth: 0,
            tz,
        };
        w.open("GTLMessages");
        w.open(name);
        w
    }

    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }

    /// `<name>` on its own line; what follows is nested.
    pub fn open(&mut self, name: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    /// `</name>`, closing the innermost open element.
    pub fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// `<name>value</name>`, the value escaped.
    pub fn leaf(&mut self, name: &str, value: &str) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_into(&mut self.out, value);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// A leaf when there is a value; nothing otherwise.
    pub fn opt(&mut self, name: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.leaf(name, v);
        }
    }

    /// A DateTime leaf in the capture point's time zone, when there is a value.
    pub fn time(&mut self, name: &str, value: Option<Timestamp>) {
        if let Some(t) = value {
            let v = datetime::format(t, self.tz);
            self.leaf(name, &v);
        }
    }

    /// An Integer leaf, when there is a value.
    pub fn int(&mut self, name: &str, value: Option<impl std::fmt::Display>) {
        if let Some(v) = value {
            self.leaf(name, &v.to_string());
        }
    }

    /// Closes the message and `GTLMessages`.
    pub fn finish(mut self, name: &str) -> String {
        self.close(name);
        self.close("GTLMessages");
        self.out
    }
}

/// Escapes markup characters, and replaces characters XML 1.0 cannot carry (control
/// characters from other channels) with U+FFFD so the document stays well-formed.
pub(crate) fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

/// Whether `name` can be written as an element name (custom data keys come from every
/// channel, not only XML).
pub(crate) fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.to_ascii_lowercase().starts_with("xml")
}
