#!/usr/bin/env python3
"""Real photographs from three Debian 12 (bookworm) wallpaper packages, fetched without installing them.

Shared by bench/make_photo_corpus.py and tests/data/pil_reference/make_fixtures.py.

    python3 bench/debian_photos.py [--photo-debs DIR] [--cache DIR]   # fetch/extract, list the photos

What it does:
  1. Finds mate-backgrounds, plasma-workspace-wallpapers and lomiri-wallpapers-16.04 .deb files: in
     --photo-debs DIR if given, else in CACHE/debs, running `apt-get download` there when missing
     (no root needed, nothing is installed; ~156 MB).
  2. Streams each .deb's data archive through `dpkg-deb --fsys-tarfile` and extracts only the
     photographs listed in PHOTOS (regular files; symlinks, PNG/SVG and graphics are skipped) to
     CACHE/photos/<package>_<version>/usr/share/...  (~30 MB). A `.complete` marker makes it one-off.
  CACHE defaults to $JEPA_PHOTO_CACHE or ~/.cache/jepa-photos.

PHOTOS is the curated list of 36 real photographs (12 mate nature photos, 13 lomiri-16.04 photos,
11 plasma photos, one of them 1-channel 'Grey'). Left out as graphics/paintings: lomiri's
analogpattern and umang, mate's abstract/Elephants and desktop/GreenTraditional, plasma's Autumn,
Flow, Honeywave, PastelHills, SafeLanding, Shell, Volna and the 400 px screenshot.jpg previews.
Outputs derived from these photos are deterministic for the package versions in EXPECTED_VERSIONS
(a different version prints a warning).

Python note: the Debian packages python3-pil/-numpy/-torch/-torchvision live in /usr/bin/python3's
dist-packages. If `python3` is another interpreter (e.g. a pyenv shim) that lacks them,
`reexec_with_system_python()` re-runs the script under /usr/bin/python3 (a line on stderr says so).
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tarfile

PACKAGES = ("mate-backgrounds", "plasma-workspace-wallpapers", "lomiri-wallpapers-16.04")
EXPECTED_VERSIONS = {
    "mate-backgrounds": "1.26.0-1",
    "plasma-workspace-wallpapers": "4:5.27.5-2",
    "lomiri-wallpapers-16.04": "20.04.0-2",
}

_MATE = "usr/share/backgrounds/mate/nature/"
_LOMIRI = "usr/share/backgrounds/"
_PLASMA = "usr/share/wallpapers/%s/contents/images/2560x1600.jpg"

# (short name, package, path inside the package). Order matters: it fixes what a seed produces.
PHOTOS = (
    [(n, "mate-backgrounds", _MATE + n + ".jpg") for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
        "Storm", "TwoWings", "Wood", "YellowFlower")]
    + [(f.split("_by_")[0], "lomiri-wallpapers-16.04", _LOMIRI + f) for f in (
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Picture_0B_by_freespace.jpg",
        "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg", "aitzgorri_by_Aitzol_Berasategi.jpg",
        "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg", "greentock_by_Peter_Nerlich.jpg",
        "life_by_Aitzol_Berasategi.jpg", "picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "seeding_by_Clements_Engelhardt.jpg", "sunset_by_Aitzol_Berasategi.jpg")]
    + [(n, "plasma-workspace-wallpapers", _PLASMA % n) for n in (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
        "Kite", "OneStandsOut", "Path", "summer_1am")]
)

_REEXEC_ENV = "JEPA_PHOTOS_REEXEC"


def reexec_with_system_python(modules=("PIL", "numpy")):
    """Re-run this script under /usr/bin/python3 if the current interpreter lacks `modules`."""
    try:
        for m in modules:
            __import__(m)
        return
    except ImportError as e:
        missing = e
    system = "/usr/bin/python3"
    if (os.environ.get(_REEXEC_ENV) or not os.path.exists(system)
            or os.path.realpath(sys.executable) == os.path.realpath(system)):
        sys.exit("error: %s. Install the Debian packages: apt-get install -y --no-install-recommends "
                 "python3-pil python3-numpy python3-torchvision" % missing)
    print("note: %s lacks %s; re-running under %s" % (sys.executable, missing.name, system),
          file=sys.stderr, flush=True)
    os.environ[_REEXEC_ENV] = "1"
    os.execv(system, [system] + sys.argv)


def default_cache():
    return os.environ.get("JEPA_PHOTO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "jepa-photos")


def _log(msg, verbose):
    if verbose:
        print("[photos] " + msg, file=sys.stderr, flush=True)


def _find_debs(folder):
    found = {}
    for pkg in PACKAGES:
        hits = sorted(glob.glob(os.path.join(folder, pkg + "_*.deb")))
        if hits:
            found[pkg] = hits[-1]
    return found


def _deb_version(deb):
    out = subprocess.run(["dpkg-deb", "-f", deb, "Version"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def fetch_debs(photo_debs=None, cache=None, verbose=True):
    """Return {package: path to .deb}, downloading into CACHE/debs when no folder is given."""
    if photo_debs:
        debs = _find_debs(photo_debs)
        missing = [p for p in PACKAGES if p not in debs]
        if missing:
            sys.exit("error: %s has no .deb for %s (expected files like %s_*.deb; get them with "
                     "`apt-get download %s`)" % (photo_debs, ", ".join(missing), missing[0], " ".join(missing)))
        _log("using .debs in %s" % photo_debs, verbose)
        return debs
    folder = os.path.join(cache or default_cache(), "debs")
    os.makedirs(folder, exist_ok=True)
    debs = _find_debs(folder)
    missing = [p for p in PACKAGES if p not in debs]
    if missing:
        if not shutil.which("apt-get"):
            sys.exit("error: apt-get not found; download %s by hand and pass --photo-debs DIR" % " ".join(missing))
        _log("apt-get download %s  (into %s, ~156 MB for all three; nothing is installed)"
             % (" ".join(missing), folder), verbose)
        r = subprocess.run(["apt-get", "download"] + missing, cwd=folder,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.exit("error: apt-get download failed (run `apt-get update` first?):\n" + r.stdout)
        debs = _find_debs(folder)
        missing = [p for p in PACKAGES if p not in debs]
        if missing:
            sys.exit("error: apt-get download did not produce %s" % ", ".join(missing))
    else:
        _log("using cached .debs in %s" % folder, verbose)
    return debs


def _extract(deb, dest, wanted, verbose):
    """Extract the regular files `wanted` (paths without ./) from deb's data archive into dest."""
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    _log("extracting %d photos from %s" % (len(wanted), os.path.basename(deb)), verbose)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    got = set()
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for m in tar:
            name = m.name[2:] if m.name.startswith("./") else m.name
            if name in wanted and m.isreg():
                out = os.path.join(tmp, name)
                os.makedirs(os.path.dirname(out), exist_ok=True)
                with tar.extractfile(m) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                got.add(name)
    proc.stdout.close()
    if proc.wait() != 0:
        sys.exit("error: dpkg-deb --fsys-tarfile %s failed" % deb)
    lost = sorted(set(wanted) - got)
    if lost:
        sys.exit("error: %s lacks %s (a different package version?)" % (deb, ", ".join(lost)))
    open(os.path.join(tmp, ".complete"), "w").close()
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)


def ensure_photos(photo_debs=None, cache=None, verbose=True):
    """Fetch/extract as needed; return [(short name, absolute path)] in PHOTOS order."""
    cache = cache or default_cache()
    debs = fetch_debs(photo_debs, cache, verbose)
    roots = {}
    for pkg, deb in debs.items():
        version = _deb_version(deb)
        if version != EXPECTED_VERSIONS[pkg]:
            print("warning: %s is version %s, not %s: derived files will differ from the reference ones"
                  % (pkg, version, EXPECTED_VERSIONS[pkg]), file=sys.stderr)
        dest = os.path.join(cache, "photos", "%s_%s" % (pkg, version.replace(":", "%3a")))
        if not os.path.exists(os.path.join(dest, ".complete")):
            _extract(deb, dest, {p for _, k, p in PHOTOS if k == pkg}, verbose)
        roots[pkg] = dest
    _log("%d photographs under %s" % (len(PHOTOS), os.path.join(cache, "photos")), verbose)
    return [(name, os.path.join(roots[pkg], path)) for name, pkg, path in PHOTOS]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photo-debs", help="folder holding the three .deb files (default: download)")
    ap.add_argument("--cache", help="cache folder (default %s)" % default_cache())
    a = ap.parse_args()
    for name, path in ensure_photos(a.photo_debs, a.cache):
        print("%-14s %s" % (name, path))


if __name__ == "__main__":
    main()
