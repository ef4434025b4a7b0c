//! Collecting a streamed Query answer, checking that it is whole.
//!
//! A server (or a front over several shards) streams result parts, each
//! tagged with its shard and its position in that shard's answer, and
//! closes every shard's answer with a trailer declaring how many parts it
//! sent. An answer is accepted only when it holds the trailers of exactly
//! the announced number of shards and, for each shard, every declared part
//! exactly once: a stream that ends early, loses a shard, repeats or
//! invents a part is an error, never a silent "nothing found".
//!
//! Memory is bounded against a hostile server: at most [`MAX_PARTS`]
//! parts and [`MAX_ANSWER_BYTES`] bytes are held, whatever the server
//! announces.

use std::collections::{BTreeMap, HashSet};

use breach_proto::sharding::MAX_SHARDS;
use breach_proto::v1 as pb;
use psi_core::ResultPart;
use psi_core::wire::Codec;

/// Most result parts one answer may have, over all shards.
pub const MAX_PARTS: usize = 1 << 16;

/// Most result bytes one answer may have, over all shards.
pub const MAX_ANSWER_BYTES: usize = 4 << 30;

/// One shard's answer so far.
#[derive(Default)]
struct ShardAnswer {
    /// `total_parts` of its result parts (all must agree).
    total: Option<u32>,
    /// Positions received.
    positions: HashSet<u32>,
    /// Parts declared by its trailer, once received.
    trailer: Option<u32>,
}

/// Collects an answer's messages in arrival order.
#[derive(Default)]
pub(crate) struct AnswerCollector {
    shards: Option<u32>,
    per_shard: BTreeMap<u32, ShardAnswer>,
    parts: Vec<ResultPart>,
    bytes: usize,
}

impl AnswerCollector {
    /// Takes the next message; an error says what is wrong with the answer.
    pub(crate) fn push(&mut self, message: pb::QueryResponsePart) -> Result<(), String> {
        let shards = message.shards.max(1);
        if shards > MAX_SHARDS {
            return Err(format!("the answer announces {shards} shards"));
        }
        match self.shards {
            None => self.shards = Some(shards),
            Some(s) if s != shards => {
                return Err(format!("the answer announces {s} shards, then {shards}"));
            }
            Some(_) => {}
        }
        let shard = message.shard;
        if shard >= MAX_SHARDS {
            return Err(format!("a message names shard {shard}"));
        }
        if !self.per_shard.contains_key(&shard) && self.per_shard.len() as u32 >= shards {
            return Err(format!(
                "messages from more than the {shards} shards the answer announces"
            ));
        }
        let answer = self.per_shard.entry(shard).or_default();
        if answer.trailer.is_some() {
            return Err(format!("shard {shard} sent a message after its trailer"));
        }
        if let Some(trailer) = message.trailer {
            if trailer.parts as usize != answer.positions.len() {
                return Err(format!(
                    "shard {shard} declares {} parts but sent {}",
                    trailer.parts,
                    answer.positions.len()
                ));
            }
            if let Some(total) = answer.total
                && total != trailer.parts
            {
                return Err(format!(
                    "shard {shard} sent {} parts of an answer of {total}",
                    trailer.parts
                ));
            }
            answer.trailer = Some(trailer.parts);
            return Ok(());
        }
        if self.parts.len() >= MAX_PARTS {
            return Err(format!("more than {MAX_PARTS} result parts"));
        }
        self.bytes = self.bytes.saturating_add(message.result_part.len());
        if self.bytes > MAX_ANSWER_BYTES {
            return Err(format!(
                "more than {MAX_ANSWER_BYTES} bytes of result parts"
            ));
        }
        let part = ResultPart::from_wire(&message.result_part)
            .map_err(|e| format!("result part {} of shard {shard}: {e}", message.part))?;
        let total = *answer.total.get_or_insert(part.total_parts);
        if part.total_parts != total {
            return Err(format!(
                "shard {shard}'s parts announce {total} and {} parts",
                part.total_parts
            ));
        }
        if message.part >= total || !answer.positions.insert(message.part) {
            return Err(format!(
                "shard {shard} sent part {} twice or out of its {total}",
                message.part
            ));
        }
        self.parts.push(part);
        Ok(())
    }

    /// The result parts of a complete answer.
    pub(crate) fn finish(self) -> Result<Vec<ResultPart>, String> {
        let shards = self.shards.unwrap_or(1);
        let whole = self
            .per_shard
            .values()
            .filter(|a| a.trailer.is_some())
            .count();
        if whole as u32 != shards {
            let short: Vec<String> = self
                .per_shard
                .iter()
                .filter(|(_, a)| a.trailer.is_none())
                .map(|(s, a)| format!("shard {s} after {} parts", a.positions.len()))
                .collect();
            return Err(if short.is_empty() {
                format!("the answer ended with {whole} of {shards} shards' answers")
            } else {
                format!(
                    "the answer ended with {whole} of {shards} shards' answers complete ({} cut short)",
                    short.join(", ")
                )
            });
        }
        Ok(self.parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(shard: u32, shards: u32, position: u32, total: u32) -> pb::QueryResponsePart {
        pb::QueryResponsePart {
            result_part: ResultPart {
                bundle_index: position % 8,
                total_parts: total,
                matching: vec![1, 2, 3],
                labels: vec![],
            }
            .to_wire(),
            shard,
            shards,
            trailer: None,
            part: position,
        }
    }

    fn trailer(shard: u32, shards: u32, parts: u32) -> pb::QueryResponsePart {
        pb::QueryResponsePart {
            result_part: vec![],
            shard,
            shards,
            trailer: Some(pb::ShardTrailer { parts }),
            part: 0,
        }
    }

    fn collect(messages: Vec<pb::QueryResponsePart>) -> Result<usize, String> {
        let mut c = AnswerCollector::default();
        for m in messages {
            c.push(m)?;
        }
        c.finish().map(|p| p.len())
    }

    #[test]
    fn whole_answers_are_accepted_in_any_order() {
        assert_eq!(
            collect(vec![part(0, 0, 1, 2), part(0, 0, 0, 2), trailer(0, 0, 2)]),
            Ok(2)
        );
        // Two shards interleaved; one of them has no parts at all.
        assert_eq!(
            collect(vec![
                part(3, 2, 0, 2),
                trailer(1, 2, 0),
                part(3, 2, 1, 2),
                trailer(3, 2, 2),
            ]),
            Ok(2)
        );
    }

    #[test]
    fn partial_duplicated_or_inconsistent_answers_are_refused() {
        let cases: Vec<(Vec<pb::QueryResponsePart>, &str)> = vec![
            (vec![], "0 of 1"),
            (vec![part(0, 1, 0, 2), part(0, 1, 1, 2)], "cut short"),
            (
                vec![part(0, 1, 0, 2), part(0, 1, 0, 2), trailer(0, 1, 2)],
                "twice",
            ),
            (
                vec![part(0, 1, 0, 2), trailer(0, 1, 2)],
                "declares 2 parts but sent 1",
            ),
            (
                vec![part(0, 1, 0, 1), trailer(0, 1, 1), part(0, 1, 0, 1)],
                "after its trailer",
            ),
            (vec![part(0, 2, 0, 1), trailer(0, 2, 1)], "1 of 2"),
            (
                vec![trailer(0, 2, 0), trailer(1, 2, 0), trailer(2, 2, 0)],
                "more than the 2",
            ),
            (vec![part(0, 1, 0, 1), part(0, 1, 1, 2)], "announce"),
            (vec![part(0, 1, 5, 2)], "out of its 2"),
            (vec![trailer(0, 1, 0), trailer(0, 2, 0)], "then 2"),
            (vec![trailer(0, MAX_SHARDS + 1, 0)], "shards"),
        ];
        for (messages, want) in cases {
            let got = collect(messages).expect_err(want);
            assert!(got.contains(want), "{got:?} lacks {want:?}");
        }
    }

    #[test]
    fn part_count_is_bounded() {
        let mut c = AnswerCollector::default();
        let mut err = None;
        for i in 0..=MAX_PARTS as u32 {
            if let Err(e) = c.push(part(0, 1, i, u32::MAX)) {
                err = Some(e);
                break;
            }
        }
        assert!(err.unwrap().contains("more than"));
    }
}
