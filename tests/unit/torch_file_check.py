#!/usr/bin/env python3
"""Reads a PyTorch zip checkpoint the way torch.load(weights_only=True) does, without torch, and
prints what it would return as JSON. Exits non-zero (reason on stderr) where that loader would
refuse the file: a global outside its allowlist (torch.jit._pickle.restore_type_tag, say), an
opcode it does not implement, a storage whose bytes do not match its size, a malformed archive.

Usage: torch_file_check.py FILE

JSON: {"dict"|"ordered_dict": [[key, value], ...]}, {"int": n}, {"float": x}, {"bool": b},
{"str": s}, {"tensor": {"dtype": "float32", "shape": [...], "values": [row-major values]}};
tensor values are read through the pickled storage offset and strides, as torch would view them.
"""
import collections
import json
import pickle
import pickletools
import struct
import sys
import zipfile

ALIGNMENT = 64  # torch aligns storage data so torch.load(mmap=True) can map it

# Storage class -> (dtype, element size, struct format); bfloat16 is decoded by hand.
STORAGES = {
    "FloatStorage": ("float32", 4, "f"),
    "DoubleStorage": ("float64", 8, "d"),
    "HalfStorage": ("float16", 2, "e"),
    "BFloat16Storage": ("bfloat16", 2, None),
    "LongStorage": ("int64", 8, "q"),
    "IntStorage": ("int32", 4, "i"),
    "ShortStorage": ("int16", 2, "h"),
    "CharStorage": ("int8", 1, "b"),
    "ByteStorage": ("uint8", 1, "B"),
    "BoolStorage": ("bool", 1, "?"),
}

# The opcodes torch/_weights_only_unpickler.py implements; anything else makes it fail.
ALLOWED_OPCODES = {
    "PROTO", "STOP", "GLOBAL", "NEWOBJ", "REDUCE", "BUILD", "APPEND", "APPENDS", "SETITEM", "SETITEMS",
    "MARK", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "NONE", "NEWFALSE", "NEWTRUE", "EMPTY_TUPLE",
    "EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "BININT", "BININT1", "BININT2", "BINFLOAT", "BINUNICODE",
    "SHORT_BINSTRING", "BINPERSID", "BINGET", "LONG_BINGET", "BINPUT", "LONG_BINPUT", "LONG1",
}


class CheckError(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckError(what)


class StorageType:
    def __init__(self, name):
        self.name = name


class Storage:
    def __init__(self, dtype, values):
        self.dtype, self.values = dtype, values


class Tensor:
    def __init__(self, dtype, shape, values):
        self.dtype, self.shape, self.values = dtype, shape, values


def decode(data, name):
    dtype, size, fmt = STORAGES[name]
    n = len(data) // size
    if fmt is None:  # bfloat16: the high half of a float32
        return [struct.unpack("<f", b"\0\0" + data[2 * i:2 * i + 2])[0] for i in range(n)]
    return list(struct.unpack(f"<{n}{fmt}", data))


def rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, *metadata):
    check(isinstance(storage, Storage), f"not a storage: {storage!r}")
    check(type(offset) is int and offset >= 0, f"bad storage offset {offset!r}")
    check(isinstance(size, tuple) and all(type(s) is int and s >= 0 for s in size), f"bad size {size!r}")
    check(isinstance(stride, tuple) and len(stride) == len(size) and all(type(s) is int for s in stride),
          f"bad stride {stride!r} for size {size!r}")
    check(requires_grad is False, f"requires_grad {requires_grad!r}")
    check(type(hooks) is collections.OrderedDict and not hooks, f"backward hooks {hooks!r}")
    check(len(metadata) <= 1, f"extra arguments {metadata!r}")
    values = []

    def walk(dim, base):
        if dim == len(size):
            check(base < len(storage.values), f"element {base} outside a storage of {len(storage.values)}")
            values.append(storage.values[base])
            return
        for i in range(size[dim]):
            walk(dim + 1, base + i * stride[dim])

    walk(0, offset)
    return Tensor(storage.dtype, list(size), values)


class WeightsOnlyUnpickler(pickle.Unpickler):
    """Resolves exactly the globals torch's weights-only unpickler allows (of those a plain
    state-dict file needs), and nothing else."""

    def __init__(self, file, archive, root):
        super().__init__(file)
        self.archive, self.root, self.loaded = archive, root, {}

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor_v2
        if module == "torch" and name in STORAGES:
            return StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise CheckError(f"global {module}.{name} is not allowed by torch.load(weights_only=True)")

    def persistent_load(self, pid):
        check(type(pid) is tuple and len(pid) == 5 and pid[0] == "storage", f"bad persistent id {pid!r}")
        _, storage_type, key, location, numel = pid
        check(isinstance(storage_type, StorageType), f"bad storage type {storage_type!r}")
        check(location == "cpu", f"location {location!r}")
        check(type(numel) is int and numel >= 0, f"numel {numel!r}")
        if key not in self.loaded:
            data = self.archive.read(f"{self.root}data/{key}")
            size = STORAGES[storage_type.name][1]
            check(len(data) == numel * size,
                  f"storage {key}: {len(data)} bytes, expected {numel} x {size} ({storage_type.name})")
            self.loaded[key] = Storage(STORAGES[storage_type.name][0], decode(data, storage_type.name))
        return self.loaded[key]


def to_json(obj):
    if isinstance(obj, Tensor):
        return {"tensor": {"dtype": obj.dtype, "shape": obj.shape, "values": obj.values}}
    if type(obj) is collections.OrderedDict:
        return {"ordered_dict": [[k, to_json(v)] for k, v in obj.items()]}
    if type(obj) is dict:
        return {"dict": [[k, to_json(v)] for k, v in obj.items()]}
    if type(obj) is bool:
        return {"bool": obj}
    if type(obj) is int:
        return {"int": obj}
    if type(obj) is float:
        return {"float": obj}
    if type(obj) is str:
        return {"str": obj}
    raise CheckError(f"unexpected {type(obj).__name__} in the result")


def check_archive(path, z):
    infos = z.infolist()
    check(infos, "empty archive")
    # PyTorchStreamReader takes the folder of the first entry as the archive's name.
    root = infos[0].filename.split("/")[0] + "/"
    check("/" in infos[0].filename, f"first entry {infos[0].filename} is not in a folder")
    names = {i.filename for i in infos}
    check(root + "data.pkl" in names, f"missing {root}data.pkl: {sorted(names)}")
    version_name = root + ".data/version" if root + ".data/version" in names else root + "version"
    check(version_name in names, f"missing {root}version: {sorted(names)}")
    version = z.read(version_name)
    check(version.strip().isdigit() and 1 <= int(version) <= 10, f"bad version record {version!r}")
    # torch.load takes a missing byteorder record (older writers) as the host's order.
    if root + "byteorder" in names:
        check(z.read(root + "byteorder") == b"little", "byteorder is not little")
    with open(path, "rb") as f:
        for info in infos:
            check(info.filename.startswith(root), f"{info.filename} outside {root}")
            check(info.compress_type == zipfile.ZIP_STORED, f"{info.filename} is compressed")
            f.seek(info.header_offset)
            header = f.read(30)
            check(header[:4] == b"PK\x03\x04", f"{info.filename}: no local header")
            name_len, extra_len = struct.unpack("<HH", header[26:30])
            data_offset = info.header_offset + 30 + name_len + extra_len
            check(data_offset % ALIGNMENT == 0, f"{info.filename}: data at {data_offset}, not {ALIGNMENT}-aligned")
            z.read(info)  # checks the CRC
    return root


def main():
    path = sys.argv[1]
    try:
        with zipfile.ZipFile(path) as z:
            root = check_archive(path, z)
            pkl = z.read(root + "data.pkl")
            for opcode, arg, _ in pickletools.genops(pkl):
                check(opcode.name in ALLOWED_OPCODES, f"opcode {opcode.name} is not supported by torch.load")
                if opcode.name == "PROTO":
                    check(arg == 2, f"pickle protocol {arg}, torch.load expects 2")
            obj = WeightsOnlyUnpickler(z.open(root + "data.pkl"), z, root).load()
    except (CheckError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError) as e:
        print(f"torch_file_check: {path}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(to_json(obj), allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
