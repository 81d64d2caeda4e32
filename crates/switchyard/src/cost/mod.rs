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

pub use charge::{Charge, Charged, PendingCharge, meter};
pub use check::{UNPRICED, Unpriced, applied_in_model_info, is_price_key, unpriced};
pub use price::{Kind, LongContext, Price, Rate, Rates, Source};
pub use resolve::{resolve, table_row};
pub use rust_decimal::Decimal;
pub use table::{DATE as TABLE_DATE, Family, Row, rows as table_rows};
