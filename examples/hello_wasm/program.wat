;; hello_wasm: the smallest wasm-only gadget ig accepts. ig calls gadgetAPIVersion() to learn
;; which wasm API the module speaks (1), then the lifecycle hooks; each returns 0 for success.
;; Compiled with `wat2wasm program.wat -o program.wasm` (wabt); the .wasm is committed.
(module
  (func (export "gadgetAPIVersion") (result i64)
    i64.const 1)
  (func (export "gadgetInit") (result i32)
    i32.const 0)
  (func (export "gadgetStart") (result i32)
    i32.const 0)
  (func (export "gadgetStop") (result i32)
    i32.const 0))
