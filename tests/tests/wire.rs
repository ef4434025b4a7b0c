//! What crosses the network: the real `breach-client` talks to the real
//! `breach-server` through a recording TCP proxy. The answers must still
//! be right, and no password, username, canonical username, SHA-1 or PSI
//! item of the vault may appear anywhere in the captured bytes, neither in
//! the raw streams nor in the reassembled HTTP/2 DATA payloads (where a
//! value split across two frames would be whole again).
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use breach_client::read_vault_file;
use breach_proto::encoding::{canonical_username, credential_item, password_item, password_sha1};
use breach_proto::v1 as pb;
use breach_proto::v1::breach_check_client::BreachCheckClient;
use e2e_tests::{
    CaptureProxy, ServerProcess, VAULT_FORMATS, assert_fixture_answer, build_fixture_store,
    expected_report, hex_lower, hex_upper, vault_path,
};

/// Text needles shorter than this could occur by chance in megabytes of
/// ciphertext (a given 6-byte string: about 2^-48 per offset).
const MIN_TEXT_NEEDLE: usize = 6;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The DATA payloads of an HTTP/2 byte stream, concatenated per stream id.
fn h2_data_by_stream(mut bytes: &[u8]) -> BTreeMap<u32, Vec<u8>> {
    let mut streams: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    while bytes.len() >= 9 {
        let len = usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]);
        let (kind, flags) = (bytes[3], bytes[4]);
        let stream = u32::from_be_bytes([bytes[5] & 0x7f, bytes[6], bytes[7], bytes[8]]);
        let Some(payload) = bytes.get(9..9 + len) else {
            break; // connection cut mid-frame
        };
        if kind == 0 {
            let data = if flags & 0x8 != 0 {
                // PADDED: pad length byte, data, padding.
                let pad = usize::from(*payload.first().unwrap_or(&0));
                payload.get(1..len.saturating_sub(pad)).unwrap_or_default()
            } else {
                payload
            };
            streams.entry(stream).or_default().extend_from_slice(data);
        }
        bytes = &bytes[9 + len..];
    }
    streams
}

/// Splits a gRPC stream body into length-prefixed messages; asserts none
/// is compressed (so a value sent in a message would appear verbatim).
fn grpc_messages(mut body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while body.len() >= 5 {
        assert_eq!(body[0], 0, "gRPC message is not compressed");
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        let Some(msg) = body.get(5..5 + len) else {
            break;
        };
        out.push(msg);
        body = &body[5 + len..];
    }
    out
}

struct Needle {
    what: String,
    bytes: Vec<u8>,
}

fn needles(format: &str) -> (Vec<Needle>, usize) {
    let vault = read_vault_file(vault_path(format), None).expect("fixture vault reads");
    // The reader saw the same logins as the known answer lists.
    let expected = expected_report(format);
    let usernames: Vec<&str> = expected["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["username"].as_str().expect("username"))
        .collect();
    let read: Vec<&str> = vault.entries.iter().map(|e| e.username.as_str()).collect();
    assert_eq!(read, usernames, "{format}: vault entries");

    let mut out = Vec::new();
    let mut skipped = 0;
    let mut text = |what: String, s: &str, out: &mut Vec<Needle>| {
        if s.len() >= MIN_TEXT_NEEDLE {
            out.push(Needle {
                what,
                bytes: s.as_bytes().to_vec(),
            });
        } else {
            skipped += 1;
        }
    };
    for e in &vault.entries {
        let pw = e.password.expose();
        let n = e.record;
        text(format!("{format} #{n} password"), pw, &mut out);
        text(format!("{format} #{n} username"), &e.username, &mut out);
        let canonical = canonical_username(&e.username);
        text(
            format!("{format} #{n} canonical username"),
            &canonical,
            &mut out,
        );
        let sha1 = password_sha1(pw);
        let cred = credential_item(&e.username, pw);
        let pwd = password_item(pw);
        for (kind, raw) in [
            ("password SHA-1", sha1.as_slice()),
            ("credential item", cred.as_slice()),
            ("password item", pwd.as_slice()),
        ] {
            out.push(Needle {
                what: format!("{format} #{n} {kind} (raw)"),
                bytes: raw.to_vec(),
            });
            for hex in [hex_lower(raw), hex_upper(raw)] {
                out.push(Needle {
                    what: format!("{format} #{n} {kind} (hex)"),
                    bytes: hex.into_bytes(),
                });
            }
        }
    }
    (out, skipped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_identifying_crosses_the_wire() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = build_fixture_store(dir.path());
    let server = ServerProcess::serve(&store, &[], dir.path().join("serve.log"));

    // What the server publishes: a control that payload bytes are visible
    // verbatim in the capture.
    let mut direct = BreachCheckClient::connect(server.url())
        .await
        .expect("connect")
        .max_decoding_message_size(64 << 20);
    let published: Vec<Vec<u8>> = direct
        .get_parameters(pb::GetParametersRequest {})
        .await
        .expect("GetParameters")
        .into_inner()
        .collections
        .into_iter()
        .map(|c| c.psi_params)
        .collect();
    // One entry per collection and tier (small and full).
    assert_eq!(published.len(), 4);
    drop(direct);

    for format in VAULT_FORMATS {
        let proxy = CaptureProxy::start(server.addr());
        let url = proxy.url();
        tokio::task::spawn_blocking(move || assert_fixture_answer(&url, format, false))
            .await
            .expect("client run through the proxy");
        let captures = proxy.captures();
        drop(proxy);

        // The proxy was in the path, and carried real gRPC traffic.
        assert!(!captures.is_empty(), "{format}: no connection proxied");
        let up: usize = captures.iter().map(|c| c.upstream.len()).sum();
        let down: usize = captures.iter().map(|c| c.downstream.len()).sum();
        assert!(
            up > 100_000 && down > 100_000,
            "{format}: ciphertexts went both ways (up {up}, down {down})"
        );
        let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
        let mut messages = 0;
        for (i, c) in captures.iter().enumerate() {
            assert!(c.upstream.starts_with(PREFACE), "{format}: HTTP/2 preface");
            let up_data = h2_data_by_stream(&c.upstream[PREFACE.len()..]);
            let down_data = h2_data_by_stream(&c.downstream);
            for (dir_name, data) in [("up", up_data), ("down", down_data)] {
                for (stream, body) in data {
                    messages += grpc_messages(&body).len();
                    haystacks.push((format!("conn {i} {dir_name} stream {stream} data"), body));
                }
            }
            haystacks.push((format!("conn {i} up raw"), c.upstream.clone()));
            haystacks.push((format!("conn {i} down raw"), c.downstream.clone()));
        }
        assert!(messages >= 6, "{format}: {messages} gRPC messages seen");
        for params in &published {
            assert!(
                haystacks
                    .iter()
                    .any(|(_, h)| memchr::memmem::find(h, params).is_some()),
                "{format}: the published PSI parameters are visible in the capture"
            );
        }

        let (needles, skipped) = needles(format);
        assert!(
            skipped <= 2,
            "{format}: {skipped} short text needles skipped"
        );
        assert!(
            needles.len() + skipped >= 21 * 12,
            "{format}: {} needles",
            needles.len()
        );
        eprintln!(
            "{format}: {} connection(s), {up} bytes up, {down} down, {messages} gRPC \
             messages; {} needles searched, {skipped} short ones skipped",
            captures.len(),
            needles.len()
        );
        for needle in &needles {
            let finder = memchr::memmem::Finder::new(&needle.bytes);
            for (where_, hay) in &haystacks {
                assert!(
                    finder.find(hay).is_none(),
                    "{}: found in {where_}",
                    needle.what
                );
            }
        }
    }
}
