//! Prints the OpenAPI document, e.g. for a validator or a client generator:
//! `cargo run -q -p orrery-fn-openapi --example print > openapi.json`.

fn main() {
    println!("{}", orrery_fn_openapi::document_json());
}
