//! Helpers shared by the integration tests: what a client does, with
//! psi-core's `Receiver` over the generated gRPC client.
#![allow(dead_code)]

use breach_proto::encoding::Label;
use breach_proto::v1 as pb;
use breach_proto::v1::breach_check_client::BreachCheckClient;
use psi_core::wire::Codec;
use psi_core::{OprfResponse, PsiParams, Query, QueryState, Receiver, ResultPart};
use tonic::transport::Channel;

/// The parameters of the smallest tier of `collection` whose queries hold
/// `items` items, as a client picks them.
pub async fn params(
    client: &mut BreachCheckClient<Channel>,
    collection: pb::Collection,
    items: usize,
) -> PsiParams {
    let resp = client
        .get_parameters(pb::GetParametersRequest {})
        .await
        .unwrap()
        .into_inner();
    let c = resp
        .collections
        .iter()
        .filter(|c| c.collection == collection as i32 && c.max_query_items >= items as u64)
        .min_by_key(|c| c.max_query_items)
        .expect("collection served");
    let p = PsiParams::from_wire(&c.psi_params).unwrap();
    assert_eq!(c.he_params_fingerprint, p.fingerprint().to_vec());
    p
}

/// Runs the OPRF for `items` of `collection` through the server and builds
/// the query for `receiver`'s parameters.
pub async fn build_query(
    client: &mut BreachCheckClient<Channel>,
    collection: pb::Collection,
    receiver: &Receiver,
    items: &[&[u8]],
) -> (Query, QueryState) {
    let (req, pending) = receiver.oprf_request(items).unwrap();
    let resp = client
        .evaluate_oprf(pb::OprfRequest {
            collection: collection as i32,
            blinded_elements: req.elements.iter().map(|e| e.to_vec()).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    let resp = OprfResponse {
        elements: resp
            .evaluated_elements
            .iter()
            .map(|e| e.as_slice().try_into().unwrap())
            .collect(),
    };
    receiver.create_query(pending, &resp).unwrap()
}

/// Runs OPRF + query for `items` of `collection` with `params`; the breach
/// count (label) of each, `None` if not breached.
pub async fn check_with(
    client: &mut BreachCheckClient<Channel>,
    collection: pb::Collection,
    params: PsiParams,
    items: &[[u8; 32]],
) -> Vec<Option<u64>> {
    let receiver = Receiver::new(params).unwrap();
    let refs: Vec<&[u8]> = items.iter().map(|i| i.as_slice()).collect();
    let (query, state) = build_query(client, collection, &receiver, &refs).await;
    let mut stream = client
        .query(pb::QueryRequest {
            collection: collection as i32,
            query: query.to_wire(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut parts = Vec::new();
    while let Some(p) = stream.message().await.unwrap() {
        parts.push(ResultPart::from_wire(&p.result_part).unwrap());
    }
    receiver
        .decode(&state, &parts)
        .unwrap()
        .into_iter()
        .map(|r| {
            r.matched.then(|| {
                Label::from_bytes(r.label.as_deref().unwrap())
                    .unwrap()
                    .count
            })
        })
        .collect()
}
