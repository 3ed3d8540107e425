//! One compiled CEL expression, and turning what it gives into Worklane's values.

use crate::vars::{jiff_time, presence_name, TaskVars, NAMES};
use cel::common::ast::{operators, EntryExpr, Expr as Ast, LiteralValue, MapExpr, StructExpr};
use cel::{Context, Env, IdedExpr, Program, Value};
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
    /// What is evaluated in place of the program's expression, when `compile` rewrote
    /// its presence tests of a task's `data` or `ext` entries (see
    /// [`rewrite_presence_tests`]).
    rewritten: Option<IdedExpr>,
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
        let mut e = Self::compile_with(
            env,
            source,
            |v| NAMES.contains(&v),
            "the task's attributes by camelCase name, ext, data, now, age, dueIn, businessAge, businessDueIn",
        )?;
        // Only here: `data` and `ext` are a task's maps when [`TaskVars`] resolves them.
        let mut rewritten = e.program.expression().clone();
        if rewrite_presence_tests(&mut rewritten) && &rewritten != e.program.expression() {
            e.rewritten = Some(rewritten);
        }
        Ok(e)
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
            rewritten: None,
            program,
        })
    }

    /// Evaluates against `vars`.
    pub fn eval(&self, env: &Arc<Env>, vars: &TaskVars<'_>) -> Result<Value, String> {
        self.eval_in(env, vars)
    }

    /// Evaluates against any resolver. One compiled by [`Expr::compile`] may ask it for
    /// presence names ([`presence_name`]), which [`TaskVars`] answers.
    pub fn eval_in(
        &self,
        env: &Arc<Env>,
        vars: &dyn cel::context::VariableResolver,
    ) -> Result<Value, String> {
        let mut ctx = Context::with_env(Arc::clone(env));
        ctx.set_variable_resolver(vars);
        let expression = self
            .rewritten
            .as_ref()
            .unwrap_or_else(|| self.program.expression());
        Value::resolve(expression, &ctx).map_err(|e| e.to_string())
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

fn is_task_map(name: &str) -> bool {
    name == "data" || name == "ext"
}

/// Rewrites each `has(data.NAME)`, `has(ext.NAME)`, `"NAME" in data` and `"NAME" in ext`
/// in `e` into the identifier [`presence_name`], which [`TaskVars`] answers as the map
/// would: CEL's own test builds the whole map (every entry boxed) to look one key up.
/// Gives false, with `e` partly rewritten, where a comprehension names a variable `data`
/// or `ext`: inside it, the name is not the task's map, and the caller keeps the
/// expression as it was.
fn rewrite_presence_tests(e: &mut IdedExpr) -> bool {
    let tested = match &e.expr {
        Ast::Select(s) if s.test => match &s.operand.expr {
            Ast::Ident(root) if is_task_map(root) => Some(presence_name(root, &s.field)),
            _ => None,
        },
        // `"NAME" in data`: the same test, spelt as membership.
        Ast::Call(c) if c.func_name == operators::IN && c.target.is_none() => match &c.args[..] {
            [key, map] => match (&key.expr, &map.expr) {
                (Ast::Literal(LiteralValue::String(name)), Ast::Ident(root))
                    if is_task_map(root) =>
                {
                    Some(presence_name(root, name))
                }
                _ => None,
            },
            _ => None,
        },
        Ast::Comprehension(c) => {
            let vars = [Some(&c.iter_var), c.iter_var2.as_ref(), Some(&c.accu_var)];
            if vars.into_iter().flatten().any(|v| is_task_map(v)) {
                return false;
            }
            None
        }
        _ => None,
    };
    if let Some(name) = tested {
        e.expr = Ast::Ident(name);
        return true;
    }
    children(e).into_iter().all(rewrite_presence_tests)
}

/// The subexpressions of `e`.
fn children(e: &mut IdedExpr) -> Vec<&mut IdedExpr> {
    match &mut e.expr {
        Ast::Select(s) => vec![&mut *s.operand],
        Ast::Call(c) => c
            .target
            .iter_mut()
            .map(|t| &mut **t)
            .chain(c.args.iter_mut())
            .collect(),
        Ast::Comprehension(c) => {
            let c = &mut **c;
            vec![
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ]
        }
        Ast::List(l) => l.elements.iter_mut().collect(),
        Ast::Map(MapExpr { entries }) | Ast::Struct(StructExpr { entries, .. }) => entries
            .iter_mut()
            .flat_map(|en| match &mut en.expr {
                EntryExpr::MapEntry(me) => vec![&mut me.key, &mut me.value],
                EntryExpr::StructField(f) => vec![&mut f.value],
            })
            .collect(),
        Ast::Ident(_) | Ast::Literal(_) | Ast::Unspecified => Vec::new(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vars::View;
    use worklane_domain::{action, BrokerId, NewTask, TaskFields};

    /// Whether `e` still holds a presence test of `data` or `ext`, either spelling.
    fn presence_left(e: &mut IdedExpr) -> bool {
        let on_task_map = |e: Option<&IdedExpr>| matches!(e.map(|e| &e.expr), Some(Ast::Ident(root)) if is_task_map(root));
        let left = match &e.expr {
            Ast::Select(s) => s.test && on_task_map(Some(&s.operand)),
            Ast::Call(c) => c.func_name == operators::IN && on_task_map(c.args.get(1)),
            _ => false,
        };
        left || children(e).into_iter().any(presence_left)
    }

    fn fields(v: serde_json::Value) -> TaskFields {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn presence_tests_answer_as_cel_does_on_the_maps() {
        let env = Arc::new(Env::stdlib());
        let now: Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
        let new = NewTask {
            capture_point_id: "cp".into(),
            fields: fields(serde_json::json!({
                "data": {"amount": "700", "empty": "", "a.b": "1", "x)": "2"},
                "ext": {"customerSegment": "gold"}
            })),
            hold: false,
            on_duplicate: Default::default(),
        };
        let task = action::create(&new, BrokerId(1), &Default::default(), now).task;
        let over = fields(serde_json::json!({
            "data": {"flag": "big", "amount": "900"},
            "ext": {"productType": "p"}
        }));
        let rewritten = [
            "has(data.amount)",
            "has(data.empty)",
            "has(data.missing)",
            "has(data.flag)",
            "has(ext.customerSegment)",
            "has(ext.productType)",
            "has(ext.sourceDueDateTime)",
            "has(ext.nothing)",
            "!has(data.amount) || has(ext.resultCode)",
            "data.amount == '700' && has(data.amount)",
            "[1, 2].exists(x, has(data.flag) && x > 1)",
            "{'k': has(data.flag)}.k",
            "[has(data.missing), has(ext.customerID)][1]",
            "'amount' in data && !('missing' in data)",
            "\"flag\" in data || 'customerSegment' in ext",
            "'nothing' in ext || 'sourceTenant' in ext",
            "'a.b' in data && 'x)' in data && !('' in data) && data.amount != ''",
            "[has(data.amount), 'flag' in data].all(x, x)",
            "has(data.amount).foo",
        ];
        // A comprehension's own `data` or `ext` is not the task's map.
        let kept = [
            "[{'amount': 1}].all(data, has(data.amount))",
            "[{'z': 1}].exists(ext, has(ext.z)) && has(data.amount)",
            "has(data.amount.x)",
            "has(size(data).x)",
            "1 in data",
            "'amount' in [data][0]",
            "data.amount in data",
        ];
        for view in [View::of(&task), View::with(&task, &over)] {
            let vars = TaskVars {
                task: view,
                now,
                calendar: None,
            };
            for src in rewritten.iter().chain(&kept) {
                let e = Expr::compile(&env, src).unwrap();
                let mut ctx = Context::with_env(Arc::clone(&env));
                ctx.set_variable_resolver(&vars);
                let by_cel = e.program.execute(&ctx).map_err(|e| e.to_string());
                assert_eq!(e.eval(&env, &vars), by_cel, "{src}");
            }
        }
        for src in rewritten {
            let e = Expr::compile(&env, src).unwrap();
            let mut rewritten = e.rewritten.clone().expect(src);
            assert!(!presence_left(&mut rewritten), "{src} is rewritten whole");
        }
        for src in kept {
            assert!(
                Expr::compile(&env, src).unwrap().rewritten.is_none(),
                "{src}"
            );
        }
    }
}
