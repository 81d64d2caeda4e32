//! What answers cost. One price table (`table`, the dated `prices.txt`), one resolution of
//! a deployment's effective price (`resolve`: config first, per rate, then the table, else
//! unknown — never $0), one function from reported usage to an exact decimal cost
//! (`Price::cost`), and the charge of each served answer (`charge`), computed by the router
//! where it commits to the deployment that served.

mod charge;
mod check;
mod price;
mod resolve;
mod table;

pub use charge::{
    Charge, Charged, PendingCharge, StreamFailure, embedding_charge, meter, meter_chunks,
};
pub use check::{UNPRICED, Unpriced, applied_in_model_info, is_price_key, unpriced};
pub use price::{BatchRates, Kind, LongContext, Price, Rate, Rates, Source};
pub use resolve::{resolve, table_price, table_row};
pub use rust_decimal::Decimal;
pub use table::{DATE as TABLE_DATE, Family, Row, rows as table_rows};

/// Usage in the order prices are listed: input, output, cache read, 5-minute and 1-hour
/// cache writes.
#[cfg(test)]
fn usage(input: u64, output: u64, read: u64, write: u64, write_1h: u64) -> crate::canonical::Usage {
    crate::canonical::Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_input_tokens: read,
        cache_creation_input_tokens: write,
        cache_creation_1h_input_tokens: write_1h,
    }
}
