//! The receiver: OPRF blinding, the encrypted query, and decoding of the
//! answer into matches and labels.

use std::fmt;
use std::sync::Arc;

use he_core::{BatchEncoder, BfvParameters, CompressedCiphertext, Decryptor, RelinKeys, SecretKey};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::field::{ItemEncoder, bits_per_felt, felts_for_bytes, felts_to_label, prime_modulus};
use crate::hashing::CuckooTable;
use crate::label::{LabelKey, decrypt_label};
use crate::messages::{OprfRequest, OprfResponse, Query, ResultPart};
use crate::oprf::{BlindedState, OprfClient};
use crate::params::PsiParams;

/// What the receiver learned about one of its items.
#[derive(Clone, PartialEq, Eq)]
pub struct MatchResult {
    /// Whether the item is in the sender's set.
    pub matched: bool,
    /// Its label (padded to `label_byte_count`) when matched in a labeled set.
    pub label: Option<Vec<u8>>,
}

impl fmt::Debug for MatchResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatchResult")
            .field("matched", &self.matched)
            .field("label_len", &self.label.as_ref().map(Vec::len))
            .finish()
    }
}

/// Blinding state between the OPRF request and the query.
#[derive(Debug)]
pub struct OprfPending {
    state: BlindedState,
}

/// Secret state between the query and the decoding of its answer.
pub struct QueryState {
    table: CuckooTable,
    label_keys: Vec<LabelKey>,
    items: usize,
}

impl fmt::Debug for QueryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueryState")
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

/// A receiver with its own BFV keys (fresh per receiver; the secret key
/// never leaves it).
pub struct Receiver {
    params: PsiParams,
    he: Arc<BfvParameters>,
    sk: SecretKey,
    relin_keys: Option<Vec<u8>>,
    encoder: ItemEncoder,
    label_parts: usize,
    bits_per_felt: u32,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl Receiver {
    /// Validates the parameters and generates fresh BFV keys (relinearization
    /// keys only when the sender will multiply ciphertexts).
    pub fn new(params: PsiParams) -> Result<Self> {
        let dag = params.validate()?;
        let he = params.he_params()?;
        let t = prime_modulus(params.bfv.plain_modulus)?;
        let encoder = ItemEncoder::new(&t, params.felts_per_item, params.item_bit_count())?;
        let bpf = bits_per_felt(&t);
        let label_parts = if params.label_byte_count == 0 {
            0
        } else {
            felts_for_bytes(params.label_byte_count + params.nonce_byte_count, bpf)
                .div_ceil(params.felts_per_item)
        };
        let sk = SecretKey::random(&he)?;
        let relin_keys = if needs_relin_keys(&params, &dag) {
            Some(RelinKeys::new(&sk)?.to_bytes(&he)?)
        } else {
            None
        };
        Ok(Self {
            params,
            he,
            sk,
            relin_keys,
            encoder,
            label_parts,
            bits_per_felt: bpf,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &PsiParams {
        &self.params
    }

    /// Most items one query can hold (the table size).
    pub fn max_items(&self) -> usize {
        self.params.table_size
    }

    /// Blinds the items for the sender's OPRF.
    pub fn oprf_request(&self, items: &[&[u8]]) -> Result<(OprfRequest, OprfPending)> {
        if items.len() > self.params.table_size {
            return Err(Error::Malformed(format!(
                "{} items exceed the table size {}",
                items.len(),
                self.params.table_size
            )));
        }
        let (state, elements) = OprfClient::blind(items)?;
        Ok((OprfRequest { elements }, OprfPending { state }))
    }

    /// Unblinds the OPRF answer, cuckoo-hashes the items and encrypts the
    /// query powers of each table row (seeded symmetric ciphertexts).
    pub fn create_query(
        &self,
        pending: OprfPending,
        response: &OprfResponse,
    ) -> Result<(Query, QueryState)> {
        let items = pending.state.len();
        let outputs = OprfClient::finalize(pending.state, &response.elements)?;
        let mut hashed = Vec::with_capacity(items);
        let mut label_keys = Vec::with_capacity(items);
        for o in &outputs {
            let (h, k) = o.item_and_label_key();
            hashed.push(h);
            label_keys.push(k);
        }
        let table =
            CuckooTable::build(&hashed, self.params.table_size, self.params.hash_functions)?;
        let n = self.he.degree();
        let f = self.params.felts_per_item;
        let bpb = self.params.bins_per_bundle();
        let t = *self.he.plaintext();
        let batch = BatchEncoder::new(&self.he);
        let powers = (0..self.params.bundle_index_count())
            .into_par_iter()
            .map(|bi| {
                let mut slots = vec![0u64; n];
                for pos in 0..bpb {
                    if let Some(entry) = table.bin(bi * bpb + pos) {
                        for (fi, v) in self.encoder.encode(&entry.item).into_iter().enumerate() {
                            slots[pos * f + fi] = v;
                        }
                    }
                }
                self.params
                    .query_powers
                    .iter()
                    .map(|&p| {
                        let raised: Vec<u64> =
                            slots.iter().map(|&x| t.pow_vt(x, p as u64)).collect();
                        let ct = self.sk.encrypt_symmetric(&batch.encode(&raised)?)?;
                        Ok(ct.to_bytes(&self.he)?)
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let query = Query {
            params_fingerprint: self.params.fingerprint(),
            relin_keys: self.relin_keys.clone(),
            powers,
        };
        Ok((
            query,
            QueryState {
                table,
                label_keys,
                items,
            },
        ))
    }

    /// Decodes the answer: one result per queried item, in query order.
    /// Errors when a part is malformed or does not belong to these parameters.
    pub fn decode(&self, state: &QueryState, parts: &[ResultPart]) -> Result<Vec<MatchResult>> {
        let mut results = vec![
            MatchResult {
                matched: false,
                label: None,
            };
            state.items
        ];
        let bpb = self.params.bins_per_bundle();
        let f = self.params.felts_per_item;
        let placements = state.table.placements();
        let decoded: Vec<Vec<(usize, Option<Vec<u8>>)>> = parts
            .par_iter()
            .map(|part| self.decode_part(state, part, &placements, bpb, f))
            .collect::<Result<_>>()?;
        for (input, label) in decoded.into_iter().flatten() {
            let r = &mut results[input];
            if !r.matched {
                r.matched = true;
                r.label = label;
            }
        }
        Ok(results)
    }

    /// The smallest noise budget (bits) among the (compressed) result
    /// ciphertexts: a diagnostic for parameter design; 0 means some part
    /// may no longer decrypt.
    pub fn min_noise_budget(&self, parts: &[ResultPart]) -> Result<u32> {
        let dec = Decryptor::new(&self.sk);
        let mut min = u32::MAX;
        for part in parts {
            for bytes in std::iter::once(&part.matching).chain(&part.labels) {
                let ct = CompressedCiphertext::from_bytes(bytes, &self.he)?;
                min = min.min(dec.compressed_noise_budget(&ct)?);
            }
        }
        Ok(min)
    }

    fn decode_part(
        &self,
        state: &QueryState,
        part: &ResultPart,
        placements: &[(usize, usize)],
        bpb: usize,
        f: usize,
    ) -> Result<Vec<(usize, Option<Vec<u8>>)>> {
        let bi = part.bundle_index as usize;
        if bi >= self.params.bundle_index_count() || part.labels.len() != self.label_parts {
            return Err(Error::Malformed(
                "result part does not fit the parameters".into(),
            ));
        }
        let batch = BatchEncoder::new(&self.he);
        let dec = Decryptor::new(&self.sk);
        let open = |bytes: &[u8]| -> Result<Vec<u64>> {
            let ct = CompressedCiphertext::from_bytes(bytes, &self.he)?;
            Ok(batch.decode(&dec.decrypt_compressed(&ct)?)?)
        };
        let matching = open(&part.matching)?;
        let hits: Vec<(usize, usize)> = placements
            .iter()
            .filter(|(_, bin)| bin / bpb == bi)
            .map(|&(input, bin)| (input, bin % bpb))
            .filter(|&(_, pos)| matching[pos * f..(pos + 1) * f].iter().all(|&v| v == 0))
            .collect();
        if hits.is_empty() {
            return Ok(Vec::new());
        }
        let label_slots: Vec<Vec<u64>> =
            part.labels.iter().map(|l| open(l)).collect::<Result<_>>()?;
        let enc_len = self.params.label_byte_count + self.params.nonce_byte_count;
        hits.into_iter()
            .map(|(input, pos)| {
                if self.label_parts == 0 {
                    return Ok((input, None));
                }
                let felts: Vec<u64> = label_slots
                    .iter()
                    .flat_map(|slots| slots[pos * f..(pos + 1) * f].iter().copied())
                    .collect();
                let encrypted = felts_to_label(&felts, enc_len, self.bits_per_felt)?;
                let label = decrypt_label(
                    &state.label_keys[input],
                    &encrypted,
                    self.params.label_byte_count,
                    self.params.nonce_byte_count,
                )?;
                Ok((input, Some(label)))
            })
            .collect()
    }
}

/// Whether the sender multiplies ciphertexts for these parameters: when
/// some needed power is not a query power, or for Paterson-Stockmeyer.
pub(crate) fn needs_relin_keys(params: &PsiParams, dag: &crate::params::PowersDag) -> bool {
    params.ps_low_degree > 0 || dag.nodes().iter().any(|n| n.parents.is_some())
}
