//! The Berkeley Function-Calling Leaderboard's AST checker, as specified in
//! `CHECKER_SPEC.md` of the BFCL data: decoding of Python-syntax model output ([`decode_python`])
//! and the verdict on decoded calls ([`check_python`]), upstream quirks kept. A run's
//! answers add up to a [`Report`].
//!

mod check;
mod dataset;
mod decode;
mod javajs;
mod report;
mod run;
mod value;

pub use check::{Verdict, check_python};
pub use dataset::{
    CATEGORIES, CheckReport, DataError, Entry, EntryVerdict, ORACLE_CANNOT_PASS, UNPASSABLE,
    UnknownCategory, category_of, check_entry, check_results, load, oracle_output,
    select_categories,
};
pub use decode::{DecodeError, DecodedCall, decode_python};
pub use javajs::{Lang, decode as decode_java_js, java_convert, js_convert};
pub use report::{CategoryReport, Report, TrialVerdict};
pub use run::{
    Answerer, BfclMode, EntryResult, fc_tools, native_messages, prompt_messages, run_entries,
    schema_valid, shown_docs,
};
pub use value::{PyType, PyVal, standardize};

/// Reads decoded calls in the tagged-JSON form `[{name: {param: value}}]`, applying the
/// shape check of spec §2; `Err` names the first element that is not a one-key map of a map.
pub fn decoded_from_tagged(v: &serde_json::Value) -> Result<Vec<DecodedCall>, DecodeError> {
    let serde_json::Value::Array(items) = v else {
        return Err(DecodeError::Shape("the decoded output is not a list"));
    };
    items
        .iter()
        .map(|item| {
            let serde_json::Value::Object(m) = item else {
                return Err(DecodeError::Shape("an element is not a map"));
            };
            if m.len() != 1 {
                return Err(DecodeError::Shape(
                    "an element does not have exactly one key",
                ));
            }
            let (name, args) = m
                .iter()
                .next()
                .ok_or(DecodeError::Shape("an element is empty"))?;
            match PyVal::from_tagged(args) {
                PyVal::Dict(entries) => Ok(DecodedCall {
                    name: name.clone(),
                    args: entries
                        .into_iter()
                        .map(|(k, v)| match k {
                            PyVal::Str(s) => Ok((Some(s), v)),
                            PyVal::None => Ok((None, v)),
                            other => Err(DecodeError::ParamName(other)),
                        })
                        .collect::<Result<_, _>>()?,
                }),
                _ => Err(DecodeError::ArgsNotMap(name.clone())),
            }
        })
        .collect()
}

/// Whether a decoding holds no call (spec §3.5): it failed, or the list is empty.
pub fn has_call(decoded: &Result<Vec<DecodedCall>, DecodeError>) -> bool {
    decoded.as_ref().is_ok_and(|calls| !calls.is_empty())
}

/// The irrelevance verdict (spec §8): passes when the output makes no call at all.
pub fn irrelevance_pass(raw: &str) -> bool {
    !has_call(&decode_python(raw))
}

/// The relevance verdict (spec §8): passes when the output makes some call, right or wrong.
pub fn relevance_pass(raw: &str) -> bool {
    has_call(&decode_python(raw))
}
