"""Export model folders to ONNX (`loopynet export MODEL --format onnx --out FILE.onnx`) and run the
exported files with onnxruntime (`loopynet predict FILE.onnx`, `loopynet.export.runtime`)."""
