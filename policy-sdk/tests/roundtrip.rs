//! Host encoder and guest decoder agree, and hostile bytes never panic a decoder.
#![allow(clippy::unwrap_used)] // a test that unwraps fails loudly, which is what it is for

use llmkube_policy_sdk::output::{Action, Decision, Output, Strategy};
use llmkube_policy_sdk::view::{BackendDetail, Request, RequestView};
use proptest::prelude::*;

fn text() -> impl proptest::strategy::Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[a-z0-9-]{1,8}",
        Just(String::new()),
        "\\PC{0,40}"
    ]
}

prop_compose! {
    fn decision()(
        kind in 0..3u8,
        backends in proptest::collection::vec(text(), 1..4),
        strategy in proptest::option::of(prop_oneof![Just(Strategy::PrimaryFallback), Just(Strategy::Weighted), Just(Strategy::Shadow)]),
        fail_closed in any::<bool>(),
        timeout in proptest::option::of(1..100_000u32),
        rule in proptest::option::of("[a-z]{1,6}"),
        status in 400..600u16,
        code in text(), message in text(),
        add in proptest::collection::vec(text(), 0..3),
        set in proptest::collection::vec((text(), text()), 0..3),
        remove in proptest::collection::vec(text(), 0..3),
        notes in proptest::collection::vec((text(), text()), 0..3),
    ) -> Decision {
        let action = match kind {
            0 => Action::Continue,
            1 => Action::Route { backends, strategy, fail_closed, timeout_ms: timeout, rule },
            _ => Action::Reject { status, code, message },
        };
        Decision { action, add_classifications: add, set_headers: set, remove_headers: remove, annotations: notes }
    }
}

proptest! {
    #[test]
    fn request_views_round_trip(
        method in text(), path in text(), model in text(), stream in any::<bool>(),
        classes in proptest::collection::vec(text(), 0..4),
        headers in proptest::collection::vec((text(), text()), 0..4),
        rule in proptest::option::of("[a-z]{1,6}"),
        backends in proptest::collection::vec(text(), 0..3),
        prompt in proptest::option::of(text()),
        principal in proptest::option::of("[a-z@.]{1,12}"),
        team in proptest::option::of("[a-z]{1,8}"),
        caps in proptest::collection::vec(text(), 0..3),
        cloud in any::<bool>(),
    ) {
        let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let bks: Vec<&str> = backends.iter().map(String::as_str).collect();
        let tier = if cloud { "cloud" } else { "local" };
        let details: Vec<BackendDetail<'_>> = bks.iter().map(|_| BackendDetail { tier, capabilities: &caps }).collect();
        let view = RequestView {
            method: &method, path: &path, model: &model, stream,
            classifications: &classes, headers: &hdrs, rule: rule.as_deref(), route_backends: &bks,
            prompt: prompt.as_deref(), principal: principal.as_deref(), team: team.as_deref(),
            route_details: &details,
        };
        // A host of ABI minor 0 sends no principal or team; this SDK reads both layouts.
        let mut w = llmkube_policy_sdk::wire::Writer::with_capacity(64);
        view.encode_for(0, &mut w);
        let old = Request::decode(&w.buf).unwrap();
        prop_assert_eq!((old.principal(), old.team(), old.model()), (None, None, model.as_str()));
        let bytes = view.to_bytes();
        let req = Request::decode(&bytes).unwrap();
        prop_assert_eq!(req.method(), method.as_str());
        prop_assert_eq!(req.path(), path.as_str());
        prop_assert_eq!(req.model(), model.as_str());
        prop_assert_eq!(req.stream(), stream);
        prop_assert_eq!(req.classifications().collect::<Vec<_>>(), classes.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(req.headers().collect::<Vec<_>>(), hdrs.clone());
        prop_assert_eq!(req.rule(), rule.as_deref());
        prop_assert_eq!(req.route_backends().collect::<Vec<_>>(), bks.clone());
        prop_assert_eq!(req.prompt(), prompt.as_deref());
        prop_assert_eq!(req.principal(), principal.as_deref());
        prop_assert_eq!(req.team(), team.as_deref());
        for (b, name) in req.route().zip(&bks) {
            prop_assert_eq!((b.name, b.tier), (*name, tier));
            prop_assert_eq!(b.capabilities().collect::<Vec<_>>(), caps.iter().map(String::as_str).collect::<Vec<_>>());
        }
        // A minor-1 host sends no details: names, and empty tiers.
        let mut w = llmkube_policy_sdk::wire::Writer::with_capacity(64);
        view.encode_for(1, &mut w);
        let one = Request::decode(&w.buf).unwrap();
        prop_assert!(one.route().all(|b| b.tier.is_empty()));
    }

    #[test]
    fn decisions_round_trip(d in decision()) {
        let bytes = d.to_bytes();
        prop_assert_eq!(Output::decode(&bytes).unwrap().to_decision(), d);
    }

    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Request::decode(&bytes);
        let _ = Output::decode(&bytes);
    }

    #[test]
    fn corrupted_encodings_are_refused_or_decode_within_bounds(d in decision(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = d.to_bytes();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        if let Ok(out) = Output::decode(&bytes) {
            let _ = out.to_decision();
        }
        bytes.truncate(i);
        prop_assert!(Output::decode(&bytes).is_err(), "a truncated output must not decode");
    }
}

#[test]
fn huge_counts_are_refused_without_allocating() {
    // version, flags, then method length 0xFFFFFFFF.
    let evil = [1u8, 0, 0xFF, 0xFF, 0xFF, 0xFF];
    assert!(Request::decode(&evil).is_err());
    let evil_out = [1u8, 0, 0xFF, 0xFF, 0xFF, 0x7F];
    assert!(Output::decode(&evil_out).is_err());
}

#[test]
fn header_lookup_ignores_case() {
    let headers = [("x-tenant", "acme")];
    let view = RequestView {
        method: "POST",
        path: "/v1/chat/completions",
        model: "m",
        headers: &headers,
        ..Default::default()
    };
    let bytes = view.to_bytes();
    let request = Request::decode(&bytes).unwrap();
    assert_eq!(request.header("X-Tenant"), Some("acme"));
    assert_eq!(request.header("x-tenant"), Some("acme"));
    assert_eq!(request.header("x-other"), None);
}

#[test]
#[should_panic(expected = "Decision::with_code applies to a reject, not to a route")]
fn a_setting_for_another_kind_of_decision_is_refused() {
    let _ = Decision::route(["local"]).with_code("oops");
}

#[test]
#[should_panic(expected = "Decision::fail_closed applies to a route, not to a reject")]
fn a_route_setting_on_a_reject_is_refused() {
    let _ = Decision::reject(403, "no").fail_closed();
}
