//! The expansion of `#[agentry::tool]`: a function becomes a unit struct of the same name,
//! a hidden arguments struct, and an `impl Tool` that decodes into the one and calls the
//! function through the other.
//!
//! Every path in the output goes through `::agentry::__private`, so a user depends on the
//! facade alone. Errors are collected, not returned at the first one, so one build shows
//! every mistake of a signature; the function is then emitted unchanged (helper attributes
//! removed) so that only the errors that matter are reported.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::{
    Attribute, Expr, ExprLit, FnArg, GenericArgument, Ident, ItemFn, Lit, LitStr, Meta, Pat,
    PathArguments, ReturnType, Signature, Type, ext::IdentExt, spanned::Spanned,
};

use crate::{doc, options};

const CONCRETE: &str = "a tool's parameters need concrete types: its JSON Schema and its \
                        decoding are fixed when it is compiled, so generics and `impl Trait` \
                        cannot be used";

/// Expands `#[agentry::tool(attr)] item`.
pub(crate) fn tool(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut func = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(func)) => func,
        Ok(other) => {
            let error = syn::Error::new_spanned(
                other,
                "`#[agentry::tool]` goes on a function (`fn` or `async fn`)",
            )
            .to_compile_error();
            return quote!(#error #item);
        }
        Err(error) => {
            let error = error.to_compile_error();
            return quote!(#error #item);
        }
    };
    match expand(attr, &mut func) {
        Ok(tokens) => tokens,
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#error #func)
        }
    }
}

/// Errors gathered while reading the function, reported together.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, error: syn::Error) {
        self.0 = Some(match self.0.take() {
            Some(mut all) => {
                all.combine(error);
                all
            }
            None => error,
        });
    }

    fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

/// A parameter that becomes a field of the arguments.
struct Param {
    ident: Ident,
    ty: Type,
    /// From `#[describe]`, a doc comment on the parameter, or `# Arguments`, in that order.
    description: Option<String>,
    /// `#[serde(..)]` and `#[schemars(..)]` written on the parameter, moved to the field.
    field_attrs: Vec<Attribute>,
}

/// What the function's parameter at a position receives.
enum Input {
    /// A field of the decoded arguments (boxed: a `Type` is large).
    Arg(Box<Param>),
    /// The call's `CallContext`, by value or by reference.
    Context { by_ref: bool },
}

/// How the function's return value becomes the call's result.
enum Output {
    /// `()`: the result is `null`.
    Unit,
    /// Any `T: Serialize`: always `Ok`.
    Plain,
    /// `Result<T, E>`: `Ok(T)` serialised; `Err(E)` passed on if `E` is `ToolError`,
    /// else its `Display` text as a failure.
    Result { tool_error: bool },
}

fn expand(attr: TokenStream, func: &mut ItemFn) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    // First, so the parameters lose their helper attributes even when expansion fails.
    let mut inputs = take_inputs(&mut func.sig, &mut errors);
    let options = match options::parse_options(attr) {
        Ok(options) => options,
        Err(error) => {
            errors.push(error);
            options::ToolOptions::default()
        }
    };
    check_signature(&func.sig, &mut errors);

    let docs_text = doc::doc_text(&func.attrs);
    let docs = doc::split_docs(&docs_text.lines);
    let all_names: Vec<String> = func
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(pat) => Some(pat.ident.unraw().to_string()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect();
    for entry in &docs.args {
        let param = inputs.iter_mut().find_map(|input| match input {
            Input::Arg(param) if param.ident.unraw() == entry.name => Some(param),
            _ => None,
        });
        match param {
            Some(param) if param.description.is_none() && !entry.text.is_empty() => {
                param.description = Some(entry.text.clone());
            }
            Some(_) => {}
            None if entry.quoted && !all_names.contains(&entry.name) => {
                errors.push(syn::Error::new(
                    docs_text.span(entry.line),
                    format!(
                        "`# Arguments` describes `{}`, which is not a parameter of `{}`",
                        entry.name, func.sig.ident
                    ),
                ));
            }
            None => {}
        }
    }

    let (name, name_span) = match &options.name {
        Some(name) => (name.value(), name.span()),
        None => (func.sig.ident.unraw().to_string(), func.sig.ident.span()),
    };
    if let Err(why) = options::check_tool_name(&name) {
        errors.push(syn::Error::new(name_span, why));
    }
    let description = match &options.description {
        Some(description) => description.value().trim().to_owned(),
        None => docs.description,
    };
    if description.is_empty() {
        errors.push(syn::Error::new_spanned(
            &func.sig.ident,
            "a tool needs a description the model can read: add a doc comment \
             (`/// What it does and when to use it.`) or \
             `#[agentry::tool(description = \"...\")]`",
        ));
    }
    errors.finish()?;

    Ok(generate(
        func,
        &inputs,
        &name,
        &description,
        options.idempotent,
    ))
}

/// Reads the parameters, removing the attributes meant for this macro from them.
fn take_inputs(sig: &mut Signature, errors: &mut Errors) -> Vec<Input> {
    let mut inputs = Vec::new();
    let mut context_seen = false;
    for input in &mut sig.inputs {
        let typed = match input {
            FnArg::Receiver(receiver) => {
                errors.push(syn::Error::new_spanned(
                    receiver,
                    "`#[agentry::tool]` goes on a free function: a tool takes no `self`",
                ));
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        let (description, field_attrs) = take_param_attrs(&mut typed.attrs, errors);
        if let Some(by_ref) = context_kind(&typed.ty) {
            if context_seen {
                errors.push(syn::Error::new_spanned(
                    &typed.ty,
                    "only one parameter can receive the `CallContext`",
                ));
            }
            context_seen = true;
            inputs.push(Input::Context { by_ref });
            continue;
        }
        let ident = match &*typed.pat {
            Pat::Ident(pat) if pat.subpat.is_none() => pat.ident.clone(),
            pat => {
                errors.push(syn::Error::new_spanned(
                    pat,
                    "name the parameter: each parameter of a tool becomes a field of its \
                     JSON arguments, named after it",
                ));
                continue;
            }
        };
        check_param_type(&typed.ty, errors);
        inputs.push(Input::Arg(Box::new(Param {
            ident,
            ty: (*typed.ty).clone(),
            description,
            field_attrs,
        })));
    }
    inputs
}

/// Takes `#[describe("...")]`, doc comments, `#[serde(..)]` and `#[schemars(..)]` off a
/// parameter: its description (`#[describe]` first) and the attributes for its field.
fn take_param_attrs(
    attrs: &mut Vec<Attribute>,
    errors: &mut Errors,
) -> (Option<String>, Vec<Attribute>) {
    let mut described: Option<String> = None;
    let mut docs = Vec::new();
    let mut field_attrs = Vec::new();
    let mut kept = Vec::new();
    for attr in std::mem::take(attrs) {
        if attr.path().is_ident("describe") {
            match describe_text(&attr) {
                Ok(_) if described.is_some() => errors.push(syn::Error::new_spanned(
                    &attr,
                    "a parameter takes one `#[describe(..)]`",
                )),
                Ok(text) => described = Some(text),
                Err(error) => errors.push(error),
            }
        } else if attr.path().is_ident("doc") {
            docs.push(attr);
        } else if attr.path().is_ident("serde") || attr.path().is_ident("schemars") {
            field_attrs.push(attr);
        } else {
            kept.push(attr);
        }
    }
    *attrs = kept;
    let description = described.or_else(|| {
        let text = doc::render(&doc::doc_text(&docs).lines);
        (!text.is_empty()).then_some(text)
    });
    (description, field_attrs)
}

/// The text of `#[describe("...")]` (or `#[describe = "..."]`).
fn describe_text(attr: &Attribute) -> syn::Result<String> {
    let text: LitStr = match &attr.meta {
        Meta::List(_) => attr.parse_args()?,
        Meta::NameValue(pair) => match &pair.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            }) => text.clone(),
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "write the description as a string: `#[describe(\"what it is\")]`",
                ));
            }
        },
        Meta::Path(_) => {
            return Err(syn::Error::new_spanned(
                attr,
                "write the description in it: `#[describe(\"what it is\")]`",
            ));
        }
    };
    let value = text.value().trim().to_owned();
    if value.is_empty() {
        return Err(syn::Error::new_spanned(text, "the description is empty"));
    }
    Ok(value)
}

/// `Some(by_ref)` if `ty` is `CallContext` or `&CallContext` (by its last path segment).
fn context_kind(ty: &Type) -> Option<bool> {
    match ty {
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .filter(|last| {
                last.ident == "CallContext" && matches!(last.arguments, PathArguments::None)
            })
            .map(|_| false),
        Type::Reference(reference) if reference.mutability.is_none() => {
            match context_kind(&reference.elem) {
                Some(false) => Some(true),
                _ => None,
            }
        }
        Type::Group(group) => context_kind(&group.elem),
        Type::Paren(paren) => context_kind(&paren.elem),
        _ => None,
    }
}

/// Refuses parameter types the arguments struct cannot hold: borrowed, `impl Trait`, `_`.
fn check_param_type(ty: &Type, errors: &mut Errors) {
    match ty {
        Type::Reference(reference) => errors.push(syn::Error::new_spanned(
            reference,
            "a tool's parameters are decoded from JSON and must own their data: use \
             `String` for `&str`, `Vec<T>` for `&[T]`",
        )),
        Type::ImplTrait(impl_trait) => errors.push(syn::Error::new_spanned(impl_trait, CONCRETE)),
        Type::Infer(infer) => errors.push(syn::Error::new_spanned(infer, CONCRETE)),
        Type::Array(array) => check_param_type(&array.elem, errors),
        Type::Group(group) => check_param_type(&group.elem, errors),
        Type::Paren(paren) => check_param_type(&paren.elem, errors),
        Type::Slice(slice) => check_param_type(&slice.elem, errors),
        Type::Tuple(tuple) => {
            for elem in &tuple.elems {
                check_param_type(elem, errors);
            }
        }
        Type::Path(path) => {
            if let Some(qself) = &path.qself {
                check_param_type(&qself.ty, errors);
            }
            for segment in &path.path.segments {
                if let PathArguments::AngleBracketed(args) = &segment.arguments {
                    for arg in &args.args {
                        if let GenericArgument::Type(ty) = arg {
                            check_param_type(ty, errors);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Refuses what a tool's signature cannot have: generics, `unsafe`, variadics.
fn check_signature(sig: &Signature, errors: &mut Errors) {
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(&sig.generics, CONCRETE));
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(where_clause, CONCRETE));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.push(syn::Error::new_spanned(
            unsafety,
            "a tool cannot be an `unsafe fn`: the model decides when it runs",
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "a tool cannot be variadic",
        ));
    }
}

fn classify_output(output: &ReturnType) -> Output {
    match output {
        ReturnType::Default => Output::Unit,
        ReturnType::Type(_, ty) => classify_type(ty),
    }
}

fn classify_type(ty: &Type) -> Output {
    match ty {
        Type::Group(group) => classify_type(&group.elem),
        Type::Paren(paren) => classify_type(&paren.elem),
        Type::Tuple(tuple) if tuple.elems.is_empty() => Output::Unit,
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else {
                return Output::Plain;
            };
            if last.ident != "Result" {
                return Output::Plain;
            }
            let tool_error = match &last.arguments {
                PathArguments::AngleBracketed(args) => args
                    .args
                    .iter()
                    .filter_map(|arg| match arg {
                        GenericArgument::Type(ty) => Some(ty),
                        _ => None,
                    })
                    .nth(1)
                    .is_some_and(is_tool_error),
                _ => false,
            };
            Output::Result { tool_error }
        }
        _ => Output::Plain,
    }
}

fn is_tool_error(ty: &Type) -> bool {
    match ty {
        Type::Group(group) => is_tool_error(&group.elem),
        Type::Paren(paren) => is_tool_error(&paren.elem),
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|last| last.ident == "ToolError"),
        _ => false,
    }
}

/// Writes the unit struct, its `run` function, the arguments struct, the type checks and
/// the `impl Tool`.
fn generate(
    func: &ItemFn,
    inputs: &[Input],
    name: &str,
    description: &str,
    idempotent: bool,
) -> TokenStream {
    let private = quote!(::agentry::__private);
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let args_ident = format_ident!("__{}_args", ident);

    let mut doc_attrs = Vec::new();
    let mut cfg_attrs = Vec::new();
    let mut fn_attrs = Vec::new();
    for attr in &func.attrs {
        if attr.path().is_ident("doc") {
            doc_attrs.push(attr);
        } else if attr.path().is_ident("cfg") {
            cfg_attrs.push(attr);
        } else {
            fn_attrs.push(attr);
        }
    }

    let mut run_sig = func.sig.clone();
    run_sig.ident = Ident::new("run", func.sig.ident.span());
    let block = &func.block;
    let run_doc = format!(
        " Calls the function the tool `{name}` was made from, as written: no JSON, no schema."
    );

    let params: Vec<&Param> = inputs
        .iter()
        .filter_map(|input| match input {
            Input::Arg(param) => Some(&**param),
            Input::Context { .. } => None,
        })
        .collect();
    let fields = params.iter().map(|param| {
        let Param {
            ident,
            ty,
            description,
            field_attrs,
        } = param;
        let description = description
            .as_ref()
            .map(|text| quote!(#[schemars(description = #text)]));
        quote!(#(#field_attrs)* #description #ident: #ty)
    });

    // Each parameter's type must have a JSON Schema and decode from JSON; checked one by
    // one, spanned at the parameter, so the error names the parameter at fault.
    let checks = params.iter().map(|param| {
        let ty = &param.ty;
        quote_spanned! {ty.span()=>
            __agentry_needs_json_schema::<#ty>();
            __agentry_needs_deserialize::<#ty>();
        }
    });
    let check_block = (!params.is_empty()).then(|| {
        quote! {
            #(#cfg_attrs)*
            const _: () = {
                #[allow(dead_code, clippy::extra_unused_type_parameters)]
                fn __agentry_needs_json_schema<T: #private::schemars::JsonSchema>() {}
                #[allow(dead_code, clippy::extra_unused_type_parameters)]
                fn __agentry_needs_deserialize<T: #private::serde::de::DeserializeOwned>() {}
                #[allow(dead_code)]
                fn __agentry_check() {
                    #(#checks)*
                }
            };
        }
    });

    let call_args = inputs.iter().map(|input| match input {
        Input::Arg(param) => {
            let ident = &param.ident;
            quote!(__args.#ident)
        }
        Input::Context { by_ref: false } => quote!(__cx),
        Input::Context { by_ref: true } => quote!(&__cx),
    });
    let await_ = func.sig.asyncness.as_ref().map(|_| quote!(.await));
    let run_call = quote!(Self::run(#(#call_args),*) #await_);
    let not_json = format!("`{name}` produced a result that cannot be written as JSON");
    let to_value = quote! {
        #private::serde_json::to_value(__value)
            .map_err(|__e| #private::ToolError::failed(#not_json).with_cause(__e))
    };
    let body = match classify_output(&func.sig.output) {
        Output::Unit => quote! {
            #run_call;
            ::core::result::Result::Ok(#private::Value::Null)
        },
        Output::Plain => quote! {
            let __value = #run_call;
            #to_value
        },
        Output::Result { tool_error: true } => quote! {
            match #run_call {
                ::core::result::Result::Ok(__value) => #to_value,
                ::core::result::Result::Err(__e) => ::core::result::Result::Err(__e),
            }
        },
        Output::Result { tool_error: false } => quote! {
            match #run_call {
                ::core::result::Result::Ok(__value) => #to_value,
                ::core::result::Result::Err(__e) => ::core::result::Result::Err(
                    #private::ToolError::failed(::std::string::ToString::to_string(&__e)),
                ),
            }
        },
    };

    quote! {
        #(#cfg_attrs)*
        #(#doc_attrs)*
        #[allow(non_camel_case_types)]
        #[derive(
            ::core::fmt::Debug,
            ::core::clone::Clone,
            ::core::marker::Copy,
            ::core::default::Default,
        )]
        #vis struct #ident;

        #(#cfg_attrs)*
        impl #ident {
            #[doc = #run_doc]
            #(#fn_attrs)*
            #vis #run_sig #block
        }

        #(#cfg_attrs)*
        #[doc(hidden)]
        #[allow(non_camel_case_types, missing_docs, dead_code)]
        #[derive(#private::serde::Deserialize, #private::schemars::JsonSchema)]
        #[serde(crate = "::agentry::__private::serde", deny_unknown_fields)]
        #[schemars(crate = "::agentry::__private::schemars")]
        #vis struct #args_ident {
            #(#fields,)*
        }

        #check_block

        #(#cfg_attrs)*
        impl #private::Tool for #ident {
            const NAME: &'static str = #name;
            type Args = #args_ident;

            fn description(&self) -> &str {
                #description
            }

            fn is_idempotent(&self) -> bool {
                #idempotent
            }

            async fn call(
                &self,
                __args: Self::Args,
                __cx: #private::CallContext,
            ) -> ::core::result::Result<#private::Value, #private::ToolError> {
                #body
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn output_of(ty: TokenStream) -> &'static str {
        let ty: Type = syn::parse2(ty).unwrap();
        match classify_type(&ty) {
            Output::Unit => "unit",
            Output::Plain => "plain",
            Output::Result { tool_error: true } => "tool_error",
            Output::Result { tool_error: false } => "display",
        }
    }

    #[test]
    fn return_types_are_classified_by_their_last_segment() {
        assert_eq!(output_of(quote!(())), "unit");
        assert_eq!(output_of(quote!(String)), "plain");
        assert_eq!(output_of(quote!(serde_json::Value)), "plain");
        assert_eq!(output_of(quote!(Result<String, std::io::Error>)), "display");
        assert_eq!(output_of(quote!(anyhow::Result<u32>)), "display");
        assert_eq!(output_of(quote!(Result<Value, ToolError>)), "tool_error");
        assert_eq!(
            output_of(quote!(std::result::Result<(), agentry::ToolError>)),
            "tool_error"
        );
    }

    fn inputs_of(func: TokenStream) -> (Vec<Input>, Option<String>, ItemFn) {
        let mut func: ItemFn = syn::parse2(func).unwrap();
        let mut errors = Errors::default();
        let inputs = take_inputs(&mut func.sig, &mut errors);
        // `Display` of a combined error shows only the first; list them all.
        let error = errors.finish().err().map(|all| {
            all.into_iter()
                .map(|one| one.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        });
        (inputs, error, func)
    }

    #[test]
    fn parameters_give_fields_and_the_context_is_found() {
        let (inputs, error, func) = inputs_of(quote! {
            async fn f(
                #[describe("The city.")] city: String,
                /// Units.
                units: Option<String>,
                #[serde(default)] days: u32,
                cx: &agentry::tools::CallContext,
            ) {}
        });
        assert_eq!(error, None);
        let described: Vec<(String, Option<String>, usize)> = inputs
            .iter()
            .map(|input| match input {
                Input::Arg(param) => (
                    param.ident.to_string(),
                    param.description.clone(),
                    param.field_attrs.len(),
                ),
                Input::Context { by_ref } => (format!("cx {by_ref}"), None, 0),
            })
            .collect();
        assert_eq!(
            described,
            vec![
                ("city".to_owned(), Some("The city.".to_owned()), 0),
                ("units".to_owned(), Some("Units.".to_owned()), 0),
                ("days".to_owned(), None, 1),
                ("cx true".to_owned(), None, 0),
            ]
        );
        // The helper attributes are gone from the function that is emitted.
        let emitted = quote!(#func).to_string();
        assert!(!emitted.contains("describe"), "{emitted}");
        assert!(!emitted.contains("serde"), "{emitted}");
        assert!(!emitted.contains("Units"), "{emitted}");
    }

    #[test]
    fn bad_parameters_are_named() {
        let (_, error, _) = inputs_of(quote! {
            fn f(&self, (a, b): (i32, i32), s: &str, v: Vec<impl Clone>, c: CallContext, d: CallContext) {}
        });
        let error = error.unwrap();
        assert!(error.contains("goes on a free function"), "{error}");
        assert!(error.contains("name the parameter"), "{error}");
        assert!(error.contains("must own their data"), "{error}");
        assert!(error.contains("concrete types"), "{error}");
        assert!(error.contains("only one parameter"), "{error}");
    }

    #[test]
    fn the_expansion_names_everything_through_the_facade() {
        let tokens = tool(
            quote!(idempotent),
            quote! {
                /// Adds.
                ///
                /// # Arguments
                ///
                /// * `a` - The first.
                pub fn add(a: i64, b: i64) -> i64 { a + b }
            },
        )
        .to_string();
        assert!(!tokens.contains("compile_error"), "{tokens}");
        assert!(tokens.contains("pub struct add ;"), "{tokens}");
        assert!(tokens.contains("pub struct __add_args"), "{tokens}");
        assert!(tokens.contains("description = \"The first.\""), "{tokens}");
        assert!(tokens.contains("\"Adds.\""), "{tokens}");
        assert!(
            tokens.contains(":: agentry :: __private :: Tool for add"),
            "{tokens}"
        );
        assert!(
            tokens.contains("pub fn run (a : i64 , b : i64) -> i64"),
            "{tokens}"
        );
    }

    #[test]
    fn a_missing_description_an_unknown_entry_and_a_bad_option_are_reported_together() {
        let tokens = tool(
            quote!(colour = "blue"),
            quote! {
                /// # Arguments
                /// * `b` - Not a parameter.
                fn f(a: i64) {}
            },
        )
        .to_string();
        assert!(tokens.contains("unknown option"), "{tokens}");
        assert!(tokens.contains("needs a description"), "{tokens}");
        assert!(tokens.contains("not a parameter of `f`"), "{tokens}");
        // The function itself is still there, so nothing else fails.
        assert!(tokens.contains("fn f (a : i64)"), "{tokens}");
    }

    #[test]
    fn only_functions_take_the_attribute() {
        let tokens = tool(
            TokenStream::new(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(tokens.contains("goes on a function"), "{tokens}");
    }
}
