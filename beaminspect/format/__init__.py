"""Bytes to chunks: the reader, the IFF/gzip container, chunk decoders, compact terms, the generated opcode table and the module MD5."""
