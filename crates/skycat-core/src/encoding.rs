//! How skycat's SQL types are written: numbers read from JSON (FITS headers converted to JSON
//! often keep numbers as strings), and the compact little-endian f64 form stored per row.

use serde_json::Value;

pub fn json_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        // FITS headers converted to JSON often keep numbers as strings.
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

pub fn f64s_to_bytes(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn bytes_to_f64s(bytes: &[u8]) -> Option<Vec<f64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect())
}
