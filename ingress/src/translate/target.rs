//! The upstream a request is encoded for: its model name and what that model accepts (the
//! route's capabilities), so that translation never emits a parameter the model would refuse.
//!
//! A route may declare its capabilities (`shared::config::Capabilities`); whatever it leaves
//! unset is derived here from the upstream protocol and the model's name. The defaults follow
//! the providers' model documentation: OpenAI's reasoning models (o-series, gpt-5, codex) take
//! `reasoning_effort`, the gpt-4 class and most OpenAI-compatible servers take none; Anthropic's
//! models since Claude 3.7 take a thinking budget, and each has a documented output ceiling;
//! Gemini 3 takes a thinking level, Gemini 2.5 a thinking budget, older Geminis and Gemma
//! neither.
//! An unknown model keeps the conservative choice: no reasoning on OpenAI-protocol upstreams,
//! thinking on Anthropic-protocol ones, and no output ceiling.

use std::borrow::Cow;

use shared::config::{Capabilities, ReasoningSupport};

use super::Dialect;
use super::ir::{Reasoning, Request, Warning};

/// An upstream model and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    pub model: &'a str,
    pub reasoning: ReasoningSupport,
    /// The most output tokens the model produces, when known.
    pub max_output_tokens: Option<u32>,
}

impl<'a> Target<'a> {
    /// The route's declared capabilities, completed with the defaults for `upstream` and
    /// `model`.
    #[must_use]
    pub fn new(upstream: Dialect, model: &'a str, declared: &Capabilities) -> Self {
        Self {
            model,
            reasoning: declared
                .reasoning
                .unwrap_or_else(|| default_reasoning(upstream, model)),
            max_output_tokens: declared
                .max_output_tokens
                .or_else(|| default_max_output_tokens(upstream, model)),
        }
    }

    /// A target with every default, for callers that know only the model's name.
    #[must_use]
    pub fn named(upstream: Dialect, model: &'a str) -> Self {
        Self::new(upstream, model, &Capabilities::default())
    }

    /// The request as this target can take it: reasoning dropped for a model without any,
    /// the output limit lowered to the model's ceiling, and for an Anthropic upstream (which
    /// requires a limit) the ceiling used when the client set none. Each change the client would
    /// notice is a warning.
    pub(crate) fn adapt<'r>(
        &self,
        upstream: Dialect,
        request: &'r Request,
        warnings: &mut Vec<Warning>,
    ) -> Cow<'r, Request> {
        let mut request = Cow::Borrowed(request);
        if self.reasoning == ReasoningSupport::None && request.reasoning.is_some() {
            if !matches!(request.reasoning, Some(Reasoning::Disabled)) {
                warnings.push(Warning::new(
                    "reasoning",
                    format!(
                        "{} takes no reasoning parameter (route capabilities); dropped",
                        self.model
                    ),
                ));
            }
            request.to_mut().reasoning = None;
        }
        if let Some(ceiling) = self.max_output_tokens {
            let ceiling = u64::from(ceiling);
            match request.params.max_tokens {
                Some(asked) if asked > ceiling => {
                    warnings.push(Warning::new(
                        "max_tokens",
                        format!(
                            "{asked} is above {}'s output limit; lowered to {ceiling}",
                            self.model
                        ),
                    ));
                    request.to_mut().params.max_tokens = Some(ceiling);
                }
                None if upstream == Dialect::Anthropic => {
                    request.to_mut().params.max_tokens = Some(ceiling);
                }
                _ => {}
            }
        }
        request
    }
}

fn model_family(model: &str) -> &str {
    // `provider/model` names of OpenAI-compatible routers, and date or region suffixes, do not
    // change the family.
    model.rsplit('/').next().unwrap_or(model)
}

fn default_reasoning(upstream: Dialect, model: &str) -> ReasoningSupport {
    let name = model_family(model).to_ascii_lowercase();
    match upstream {
        Dialect::Anthropic => {
            let without_thinking = [
                "claude-3-5-",
                "claude-3-haiku",
                "claude-3-opus",
                "claude-3-sonnet",
                "claude-2",
                "claude-instant",
            ];
            if without_thinking
                .iter()
                .any(|prefix| name.starts_with(prefix))
            {
                ReasoningSupport::None
            } else {
                ReasoningSupport::Budget
            }
        }
        Dialect::Gemini => {
            if name.starts_with("gemini-3") {
                ReasoningSupport::Effort
            } else if name.starts_with("gemini-2.5") {
                ReasoningSupport::Budget
            } else {
                ReasoningSupport::None
            }
        }
        Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            let o_series =
                name.len() >= 2 && name.starts_with('o') && name.as_bytes()[1].is_ascii_digit();
            let reasoning_families = ["gpt-5", "codex", "gpt-oss"];
            if o_series
                || reasoning_families
                    .iter()
                    .any(|family| name.starts_with(family))
            {
                ReasoningSupport::Effort
            } else {
                ReasoningSupport::None
            }
        }
    }
}

/// Whether a Gemini model refuses a step's first function call without a thought signature
/// (Gemini 3 and later), so history from another model needs Google's documented stand-in.
pub fn gemini_requires_signatures(model: &str) -> bool {
    let name = model_family(model).to_ascii_lowercase();
    name.strip_prefix("gemini-")
        .and_then(|rest| rest.split(['.', '-']).next())
        .and_then(|major| major.parse::<u32>().ok())
        .is_some_and(|major| major >= 3)
}

/// Whether a Gemini model is a Pro one: Pros cannot turn thinking off (2.5 Pro refuses a
/// budget of 0) and Gemini 3 Pro thinks at `low` or `high` (later Pros add `medium`), never
/// `minimal`, which only the Flash models take.
pub fn gemini_pro(model: &str) -> bool {
    let name = model_family(model).to_ascii_lowercase();
    name.starts_with("gemini-") && name.split('-').any(|part| part == "pro")
}

/// Anthropic's documented output ceilings (Models overview, "Max output") and Gemini's
/// (Models, "Output token limit").
fn default_max_output_tokens(upstream: Dialect, model: &str) -> Option<u32> {
    let name = model_family(model).to_ascii_lowercase();
    if upstream == Dialect::Gemini {
        let ceilings: [(&str, u32); 5] = [
            ("gemini-3", 65_536),
            ("gemini-2.5", 65_536),
            ("gemini-2.0", 8_192),
            ("gemini-1.5", 8_192),
            ("gemma-3", 8_192),
        ];
        return ceilings
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map(|(_, ceiling)| *ceiling);
    }
    if upstream != Dialect::Anthropic {
        return None;
    }
    let ceilings: [(&str, u32); 12] = [
        ("claude-opus-4-5", 64_000),
        ("claude-opus-4", 32_000),
        ("claude-sonnet-4", 64_000),
        ("claude-haiku-4", 64_000),
        ("claude-3-7-sonnet", 64_000),
        ("claude-3-5-sonnet", 8_192),
        ("claude-3-5-haiku", 8_192),
        ("claude-3-haiku", 4_096),
        ("claude-3-opus", 4_096),
        ("claude-3-sonnet", 4_096),
        ("claude-2", 4_096),
        ("claude-instant", 4_096),
    ];
    ceilings
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, ceiling)| *ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_reasoning_only_for_reasoning_families() {
        for model in [
            "o3",
            "o4-mini",
            "gpt-5",
            "gpt-5-codex",
            "openai/gpt-oss-120b",
        ] {
            assert_eq!(
                Target::named(Dialect::OpenAiChat, model).reasoning,
                ReasoningSupport::Effort,
                "{model}"
            );
        }
        for model in [
            "gpt-4.1",
            "gpt-4o",
            "deepseek-chat",
            "qwen3-coder",
            "omni-x",
        ] {
            assert_eq!(
                Target::named(Dialect::OpenAiChat, model).reasoning,
                ReasoningSupport::None,
                "{model}"
            );
        }
    }

    #[test]
    fn gemini_thinking_kind_signatures_and_ceilings_by_model() {
        let named = |model| Target::named(Dialect::Gemini, model);
        assert_eq!(
            named("gemini-3-pro-preview").reasoning,
            ReasoningSupport::Effort
        );
        assert_eq!(
            named("gemini-2.5-flash").reasoning,
            ReasoningSupport::Budget
        );
        assert_eq!(
            named("models/gemini-2.5-pro").reasoning,
            ReasoningSupport::Budget
        );
        assert_eq!(named("gemini-2.0-flash").reasoning, ReasoningSupport::None);
        assert_eq!(named("gemma-3-27b-it").reasoning, ReasoningSupport::None);
        assert_eq!(named("gemini-2.5-pro").max_output_tokens, Some(65_536));
        assert_eq!(named("gemini-2.0-flash").max_output_tokens, Some(8_192));
        assert_eq!(named("my-finetune").max_output_tokens, None);
        assert!(gemini_requires_signatures("gemini-3-flash"));
        assert!(gemini_requires_signatures("gemini-3.1-pro"));
        assert!(!gemini_requires_signatures("gemini-2.5-flash"));
        assert!(gemini_pro("gemini-2.5-pro") && !gemini_pro("gemini-2.5-flash"));
    }

    #[test]
    fn anthropic_thinking_and_ceilings_by_model() {
        let sonnet = Target::named(Dialect::Anthropic, "claude-sonnet-4-5-20250929");
        assert_eq!(sonnet.reasoning, ReasoningSupport::Budget);
        assert_eq!(sonnet.max_output_tokens, Some(64_000));
        let opus = Target::named(Dialect::Anthropic, "claude-opus-4-1");
        assert_eq!(opus.max_output_tokens, Some(32_000));
        let old = Target::named(Dialect::Anthropic, "claude-3-5-haiku-latest");
        assert_eq!(old.reasoning, ReasoningSupport::None);
        assert_eq!(old.max_output_tokens, Some(8_192));
        assert_eq!(
            Target::named(Dialect::Anthropic, "kimi-k2").max_output_tokens,
            None
        );
    }

    #[test]
    fn declared_capabilities_win() {
        let declared = Capabilities {
            reasoning: Some(ReasoningSupport::None),
            max_output_tokens: Some(1_000),
        };
        let target = Target::new(Dialect::OpenAiChat, "o3", &declared);
        assert_eq!(target.reasoning, ReasoningSupport::None);
        assert_eq!(target.max_output_tokens, Some(1_000));
    }
}
