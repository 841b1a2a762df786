//! Property tests: random input sequences across several payments, checked step by step
//! against a simple reference model and against every invariant of DESIGN.md §2.5.

mod engine;

mod alipay;
