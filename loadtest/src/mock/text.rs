//! The deterministic text the mock "generates": one word per output token.
//!
//! The whole text is built once, with the offset of every word, so a response of `n` tokens is a
//! slice of a static string and a chunk is a slice of that slice: no per-request formatting.

use std::sync::LazyLock;

/// The most output tokens one response can carry; larger requests are capped here.
pub const MAX_OUTPUT_TOKENS: u32 = 32_768;

const VOCABULARY: &[&str] = &[
    "The", "mock", "upstream", "answers", "with", "plain", "words", "so", "that", "gateways",
    "can", "count", "tokens", "and", "measure", "latency", "without", "paying", "for", "a", "real",
    "model", "every", "word", "is", "one", "token", "here", "stream", "chunks", "arrive",
    "quickly",
];

struct GeneratedText {
    text: String,
    /// `word_starts[i]` is the byte offset of word `i`; the last entry is `text.len()`.
    word_starts: Vec<usize>,
}

static GENERATED: LazyLock<GeneratedText> = LazyLock::new(|| {
    let mut text = String::with_capacity(MAX_OUTPUT_TOKENS as usize * 7);
    let mut word_starts = Vec::with_capacity(MAX_OUTPUT_TOKENS as usize + 1);
    for index in 0..MAX_OUTPUT_TOKENS as usize {
        word_starts.push(text.len());
        if index > 0 {
            text.push(' ');
        }
        // A stride co-prime with the vocabulary size walks every word before repeating.
        text.push_str(VOCABULARY[(index * 7) % VOCABULARY.len()]);
        if index % 12 == 11 {
            text.push('.');
        }
    }
    word_starts.push(text.len());
    GeneratedText { text, word_starts }
});

/// Words `[start, end)` of the generated text, with the leading space of each word but the first
/// of the whole text, so concatenating consecutive ranges gives the full text.
pub fn words(start: u32, end: u32) -> &'static str {
    let generated = &*GENERATED;
    let start = (start.min(MAX_OUTPUT_TOKENS)) as usize;
    let end = (end.min(MAX_OUTPUT_TOKENS) as usize).max(start);
    &generated.text[generated.word_starts[start]..generated.word_starts[end]]
}

/// How `tokens` words are spread over at most `chunks` stream deltas: the first chunks carry one
/// word more when the division is not exact. Returns the `[start, end)` word range of each chunk.
pub fn chunk_ranges(tokens: u32, chunks: u32) -> impl Iterator<Item = (u32, u32)> {
    let chunks = chunks.clamp(1, tokens.max(1));
    let base = tokens / chunks;
    let extra = tokens % chunks;
    let mut start = 0;
    (0..chunks).map(move |index| {
        let size = base + u32::from(index < extra);
        let range = (start, start + size);
        start += size;
        range
    })
}

/// Splits `text` into at most `pieces` fragments on character boundaries, for tool-call argument
/// deltas.
pub fn split_fragments(text: &str, pieces: u32) -> Vec<&str> {
    let char_count = text.chars().count() as u32;
    let mut fragments = Vec::new();
    let mut rest = text;
    for (start, end) in chunk_ranges(char_count, pieces) {
        let take = (end - start) as usize;
        let split_at = rest
            .char_indices()
            .nth(take)
            .map_or(rest.len(), |(index, _)| index);
        let (fragment, remainder) = rest.split_at(split_at);
        fragments.push(fragment);
        rest = remainder;
    }
    fragments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_concatenate_to_the_whole_text() {
        for tokens in [1, 2, 7, 50, 333] {
            for chunks in [1, 3, 8, 50, 400] {
                let joined: String = chunk_ranges(tokens, chunks)
                    .map(|(start, end)| words(start, end))
                    .collect();
                assert_eq!(joined, words(0, tokens));
                assert_eq!(
                    chunk_ranges(tokens, chunks).count() as u32,
                    chunks.min(tokens)
                );
                assert!(chunk_ranges(tokens, chunks).all(|(start, end)| end > start));
            }
        }
    }

    #[test]
    fn fragments_keep_characters_whole() {
        let text = r#"{"city":"Zürich","note":"ünïcode"}"#;
        for pieces in 1..40 {
            let fragments = split_fragments(text, pieces);
            assert_eq!(fragments.concat(), text);
            assert!(fragments.len() as u32 <= pieces);
        }
    }

    #[test]
    fn word_count_is_token_count() {
        assert_eq!(words(0, 5).split(' ').count(), 5);
        assert_eq!(words(0, 0), "");
    }
}
