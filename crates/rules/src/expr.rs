//! One compiled CEL expression, and turning what it gives into Worklane's values.

use crate::vars::{jiff_time, TaskVars, NAMES};
use cel::{Context, Env, Program, Value};
use std::sync::Arc;
use worklane_domain::Timestamp;

/// The longest expression accepted, in bytes: the parser recurses per nesting level, so
/// size is bounded before parsing.
pub const MAX_EXPRESSION_BYTES: usize = 4096;

/// The deepest nesting of brackets accepted (the parser uses ~21 stack frames per level).
pub const MAX_NESTING: usize = 24;

/// A CEL expression compiled once at load.
pub(crate) struct Expr {
    pub source: String,
    program: Program,
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

fn nesting(source: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in source.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

impl Expr {
    /// Compiles `source`, refusing what is too long or too deep and any variable the
    /// rules do not provide.
    pub fn compile(env: &Env, source: &str) -> Result<Self, String> {
        Self::compile_with(
            env,
            source,
            |v| NAMES.contains(&v),
            "the task's attributes by camelCase name, ext, data, now, age, dueIn, businessAge, businessDueIn",
        )
    }

    /// Compiles `source`, refusing any variable `known` does not accept (`hint` lists
    /// the ones there are).
    pub fn compile_with(
        env: &Env,
        source: &str,
        known: impl Fn(&str) -> bool,
        hint: &str,
    ) -> Result<Self, String> {
        if source.trim().is_empty() {
            return Err("the expression is empty".into());
        }
        if source.len() > MAX_EXPRESSION_BYTES {
            return Err(format!(
                "the expression is {} bytes long; at most {MAX_EXPRESSION_BYTES} are allowed",
                source.len()
            ));
        }
        if nesting(source) > MAX_NESTING {
            return Err(format!(
                "the expression nests brackets more than {MAX_NESTING} deep"
            ));
        }
        let program = env
            .compile(source)
            .map_err(|e| e.to_string().trim().to_owned())?;
        let refs = program.references();
        // A macro's loop variable (`exists(x, ...)`) is listed among the references too.
        let bound = |v: &str| {
            let compact: String = source.chars().filter(|c| !c.is_whitespace()).collect();
            compact.contains(&format!("({v},"))
        };
        if let Some(unknown) = refs
            .variables()
            .into_iter()
            .find(|v| !known(v) && !bound(v))
        {
            return Err(format!("unknown variable {unknown:?} ({hint})"));
        }
        Ok(Self {
            source: source.to_owned(),
            program,
        })
    }

    /// Evaluates against `vars`.
    pub fn eval(&self, env: &Arc<Env>, vars: &TaskVars<'_>) -> Result<Value, String> {
        self.eval_in(env, vars)
    }

    /// Evaluates against any resolver.
    pub fn eval_in(
        &self,
        env: &Arc<Env>,
        vars: &dyn cel::context::VariableResolver,
    ) -> Result<Value, String> {
        let mut ctx = Context::with_env(Arc::clone(env));
        ctx.set_variable_resolver(vars);
        self.program.execute(&ctx).map_err(|e| e.to_string())
    }

    /// The top-level variables the expression reads.
    pub fn variables(&self) -> Vec<String> {
        self.program
            .references()
            .variables()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Evaluates a condition: it must give a bool.
    pub fn eval_bool(&self, env: &Arc<Env>, vars: &TaskVars<'_>) -> Result<bool, String> {
        match self.eval(env, vars)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("gave {} where a bool is needed", type_name(&other))),
        }
    }

    /// Evaluates to an integer that fits an `i32` (priority, business value).
    pub fn eval_int(&self, env: &Arc<Env>, vars: &TaskVars<'_>) -> Result<i32, String> {
        let v = self.eval(env, vars)?;
        let n = integer(&v)?;
        i32::try_from(n).map_err(|_| format!("gave {n}, outside the 32-bit integer range"))
    }

    /// Evaluates to a timestamp.
    pub fn eval_time(&self, env: &Arc<Env>, vars: &TaskVars<'_>) -> Result<Timestamp, String> {
        match self.eval(env, vars)? {
            Value::Timestamp(t) => {
                jiff_time(&t).ok_or_else(|| "gave a timestamp out of range".to_owned())
            }
            other => Err(format!(
                "gave {} where a timestamp is needed",
                type_name(&other)
            )),
        }
    }
}

/// An integer from a CEL int, uint, or a double with no fraction.
pub(crate) fn integer(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(n) => Ok(*n),
        Value::UInt(n) => i64::try_from(*n).map_err(|_| format!("gave {n}, too large")),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
        other => Err(format!(
            "gave {} where an integer is needed",
            type_name(other)
        )),
    }
}

/// CEL's name for a value's type, for messages.
pub(crate) fn type_name(v: &Value) -> String {
    match v {
        Value::Float(f) => format!("the double {f}"),
        Value::String(s) => format!("the string {:?}", s.as_str()),
        Value::Null => "null".to_owned(),
        other => format!("a value of type {}", other.type_of()),
    }
}

/// A CEL value as the JSON a task attribute takes.
pub(crate) fn to_json(v: &Value) -> Result<serde_json::Value, String> {
    Ok(match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(n) => (*n).into(),
        Value::UInt(n) => (*n).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .ok_or_else(|| format!("gave {f}, which is not a finite number"))?,
        Value::String(s) => serde_json::Value::String(s.as_str().to_owned()),
        Value::Timestamp(t) => serde_json::Value::String(
            jiff_time(t)
                .ok_or_else(|| "gave a timestamp out of range".to_owned())?
                .to_string(),
        ),
        other => {
            return Err(format!(
                "gave {}, which no attribute takes",
                type_name(other)
            ))
        }
    })
}

/// A CEL value as a `data` attribute's text.
pub(crate) fn to_text(v: &Value) -> Result<String, String> {
    match to_json(v)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Null => Err("gave null".into()),
        other => Ok(other.to_string()),
    }
}
