//! The options of `#[agentry::tool(...)]` and the rule a tool's name must follow.

use proc_macro2::TokenStream;
use syn::{LitBool, LitStr, Token, parse::Parser};

/// What `#[agentry::tool(...)]` was given.
#[derive(Default)]
pub(crate) struct ToolOptions {
    /// `name = "..."`: the name the model calls the tool by, instead of the function's.
    pub(crate) name: Option<LitStr>,
    /// `description = "..."`: the tool's description, instead of the doc comment's.
    pub(crate) description: Option<LitStr>,
    /// `idempotent` (or `idempotent = true`): running a call twice is harmless.
    pub(crate) idempotent: bool,
}

const KNOWN: &str = "expected `name = \"...\"`, `description = \"...\"` or `idempotent`";

/// Parses the tokens between the parentheses of `#[agentry::tool(...)]`.
pub(crate) fn parse_options(tokens: TokenStream) -> syn::Result<ToolOptions> {
    let mut options = ToolOptions::default();
    let mut idempotent_seen = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            if options.name.is_some() {
                return Err(meta.error("`name` is given twice"));
            }
            options.name = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("description") {
            if options.description.is_some() {
                return Err(meta.error("`description` is given twice"));
            }
            options.description = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("idempotent") {
            if idempotent_seen {
                return Err(meta.error("`idempotent` is given twice"));
            }
            idempotent_seen = true;
            options.idempotent = if meta.input.peek(Token![=]) {
                meta.value()?.parse::<LitBool>()?.value
            } else {
                true
            };
            Ok(())
        } else {
            Err(meta.error(format!("unknown option of `#[agentry::tool]`: {KNOWN}")))
        }
    });
    parser.parse2(tokens)?;
    Ok(options)
}

/// Checks a tool name against the rule the model APIs share: 1 to 64 ASCII letters,
/// digits, `_` or `-`; the error is a sentence for the compile error.
pub(crate) fn check_tool_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a tool's name cannot be empty".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "a tool's name may use only ASCII letters, digits, `_` and `-` (model APIs refuse \
             others), and `{name}` has `{bad}`"
        ));
    }
    if name.len() > 64 {
        return Err(format!(
            "a tool's name has at most 64 characters (model APIs refuse longer ones), and \
             `{name}` has {}; pick a shorter one with `#[agentry::tool(name = \"...\")]`",
            name.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn error_of(tokens: TokenStream) -> String {
        match parse_options(tokens) {
            Ok(_) => panic!("the options should not parse"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn no_options_means_the_defaults() {
        let options = parse_options(TokenStream::new()).unwrap();
        assert!(options.name.is_none());
        assert!(options.description.is_none());
        assert!(!options.idempotent);
    }

    #[test]
    fn name_description_and_idempotent_are_read() {
        let options = parse_options(quote!(
            name = "get-weather",
            idempotent,
            description = " Weather. "
        ))
        .unwrap();
        assert_eq!(
            options.name.map(|n| n.value()).as_deref(),
            Some("get-weather")
        );
        assert_eq!(
            options.description.map(|d| d.value()).as_deref(),
            Some(" Weather. ")
        );
        assert!(options.idempotent);
    }

    #[test]
    fn idempotent_takes_an_optional_bool() {
        assert!(parse_options(quote!(idempotent = true)).unwrap().idempotent);
        assert!(
            !parse_options(quote!(idempotent = false))
                .unwrap()
                .idempotent
        );
        assert!(parse_options(quote!(idempotent = "yes")).is_err());
    }

    #[test]
    fn unknown_and_repeated_options_are_refused() {
        let unknown = error_of(quote!(nmae = "x"));
        assert!(unknown.contains("unknown option"), "{unknown}");
        assert!(unknown.contains("`name = \"...\"`"), "{unknown}");
        let twice = error_of(quote!(name = "a", name = "b"));
        assert!(twice.contains("`name` is given twice"), "{twice}");
        let twice = error_of(quote!(idempotent, idempotent = false));
        assert!(twice.contains("`idempotent` is given twice"), "{twice}");
    }

    #[test]
    fn a_name_must_be_a_string() {
        assert!(parse_options(quote!(name = get_weather)).is_err());
        assert!(parse_options(quote!(name)).is_err());
    }

    #[test]
    fn tool_names_follow_the_model_api_rule() {
        assert!(check_tool_name("get_weather").is_ok());
        assert!(check_tool_name("get-weather-2").is_ok());
        assert!(check_tool_name(&"a".repeat(64)).is_ok());
        assert!(check_tool_name("").is_err());
        assert!(check_tool_name(&"a".repeat(65)).unwrap_err().contains("64"));
        assert!(check_tool_name("get weather").unwrap_err().contains("` `"));
        assert!(check_tool_name("météo").unwrap_err().contains("`é`"));
    }
}
