#!/usr/bin/env python3
"""Reads a `jepa export` file the way Python's torch.load does (zip archive + pickle with
persistent storage ids), without needing torch installed, and checks what torch.load would return.

Usage: check_export.py FILE.pt [--no-module-prefix]
"""
import pickle
import sys
import zipfile


class Storage:
    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel = dtype, key, numel


class FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    return FakeTensor(storage, offset, size, stride)


class TorchUnpickler(pickle.Unpickler):
    # torch.load's unpickler resolves these names from the torch package.
    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor_v2
        if module == "torch" and name.endswith("Storage"):
            return name
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel), as torch.save writes.
        assert pid[0] == "storage", pid
        return Storage(pid[1], pid[2], pid[4])


def main():
    path = sys.argv[1]
    prefix = "" if "--no-module-prefix" in sys.argv else "module."
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("data.pkl")]
        assert len(pkl) == 1, names
        root = pkl[0][: -len("data.pkl")]
        obj = TorchUnpickler(z.open(pkl[0])).load()
        assert isinstance(obj, dict), type(obj)
        for key in ("encoder", "predictor", "target_encoder", "epoch", "loss", "batch_size", "world_size", "lr"):
            assert key in obj, f"missing {key}: {sorted(obj)}"
        for part in ("encoder", "target_encoder"):
            sd = obj[part]
            for k in ("pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "norm.weight"):
                assert prefix + k in sd, f"{part} lacks {prefix + k}: {sorted(sd)[:5]}"
        for k in ("mask_token", "predictor_embed.weight", "predictor_pos_embed", "predictor_proj.weight"):
            assert prefix + k in obj["predictor"], f"predictor lacks {prefix + k}"
        # Every tensor's bytes are in the archive, sized as its storage says.
        for part in ("encoder", "predictor", "target_encoder"):
            for k, t in obj[part].items():
                data = z.read(f"{root}data/{t.storage.key}")
                assert len(data) == t.storage.numel * 4, (k, len(data), t.storage.numel)
        print(f"ok: {len(obj['encoder'])} encoder, {len(obj['predictor'])} predictor, "
              f"{len(obj['target_encoder'])} target_encoder tensors; pos_embed {obj['encoder'][prefix + 'pos_embed'].size}")


if __name__ == "__main__":
    main()
