"""Licences of the fetched images: Debian copyright files (DEP-5), the wheels' docstrings and READMEs.
"""

from __future__ import annotations

import ast
import fnmatch
import re


def parse_dep5(text: str) -> list[dict[str, str]]:
    """Parse a machine-readable debian/copyright file into paragraphs (lower-case keys)."""
    paragraphs: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if cur:
                paragraphs.append(cur)
            cur, key = {}, None
            continue
        if line[0] in " \t" and key is not None:
            cur[key] += "\n" + line.strip()
            continue
        m = re.match(r"^([A-Za-z][A-Za-z0-9-]*):\s?(.*)$", line)
        if m:
            key = m.group(1).lower()
            cur[key] = m.group(2).strip()
    if cur:
        paragraphs.append(cur)
    return paragraphs


def dep5_licence(paragraphs: list[dict[str, str]], path: str) -> tuple[str, str]:
    """(licence, copyright) of an installed file under DEP-5 rules (last match wins).

    The patterns in debian/copyright are relative to the upstream source while ``path`` is
    where the file is installed, so every trailing part of ``path`` is tried.
    """
    parts = path.strip("/").split("/")
    suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
    found = ("unknown", "")
    for para in paragraphs:
        if "files" not in para or "license" not in para:
            continue
        patterns = para["files"].split()
        if any(fnmatch.fnmatchcase(s, p) for p in patterns for s in suffixes):
            found = (para["license"].splitlines()[0].strip(), para.get("copyright", ""))
    return found


def classify_licence_text(text: str) -> tuple[str, bool]:
    """Short licence name and whether it is free to redistribute, from a licence note."""
    t = " ".join(text.lower().split())
    if "cc0" in t:
        return "CC0-1.0", True
    if "public domain" in t:
        return "public-domain", True
    if "creativecommons.org/licenses/by/2.0" in t:
        return "CC-BY-2.0", True
    if "no known copyright restrictions" in t:
        # Not a licence grant: redistribution rights are unclear, so not used.
        return "no-known-copyright-restrictions", False
    return "unknown", False


def skimage_licences(fetchers_source: str) -> dict[str, tuple[str, bool, str]]:
    """Map each data file loaded in skimage/data/_fetchers.py to (licence, free, note).

    scikit-image documents each sample image's origin and licence in the docstring of the
    function that loads it (its data README no longer lists them).
    """
    tree = ast.parse(fetchers_source)
    result: dict[str, tuple[str, bool, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        doc = ast.get_docstring(node) or ""
        files = [
            c.value.split("/")[-1]
            for c in ast.walk(node)
            if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value.startswith("data/")
        ]
        licence, free = classify_licence_text(doc)
        note = ""
        for para in re.split(r"\n\s*\n", doc):
            if classify_licence_text(para)[0] == licence and licence != "unknown":
                para = re.sub(r"^\s*\w+\s*\n\s*-{3,}\s*\n", "", para)  # numpydoc header
                note = " ".join(para.split())
                break
        for f in files:
            result.setdefault(f, (licence, free, f"{node.name}(): {note}".strip()))
    return result


def sklearn_licences(readme: str) -> dict[str, tuple[str, bool, str]]:
    """Map sklearn/datasets/images/*.jpg to (licence, free, note) from its README."""
    result = {}
    for block in re.split(r"\n(?=Image:)", readme):
        m = re.match(r"Image:\s*(\S+)", block.strip())
        if not m:
            continue
        licence, free = classify_licence_text(block)
        result[m.group(1)] = (licence, free, " ".join(block.split()))
    return result


def normalise_licence(name: str) -> str:
    """'CC-BY-SA 4.0' -> 'CC-BY-SA-4.0', 'Public Domain' -> 'public-domain', 'GPLv3' -> 'GPL-3'."""
    t = " ".join(name.split())
    if t.lower() == "public domain":
        return "public-domain"
    m = re.fullmatch(r"(CC[- ]BY(?:[- ]SA)?|CC0)[- ]?(\d\.\d)", t, re.IGNORECASE)
    if m:
        return f"{m.group(1).upper().replace(' ', '-')}-{m.group(2)}"
    m = re.fullmatch(r"GPLv?(\d)(\+?)", t)
    if m:
        return f"GPL-{m.group(1)}{m.group(2)}"
    return t


def readme_licences(text: str) -> dict[str, dict[str, str]]:
    """{file: stanza} from a GCompris resource README: stanzas of 'Key: value' lines separated by
    blank lines, whose 'Files:' names one file per line (on its own line or after the key)."""
    out: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", text.strip()):
        stanza: dict[str, str] = {}
        files: list[str] = []
        key = None
        for line in block.splitlines():
            m = re.match(r"^([A-Za-z][A-Za-z0-9-]*):\s?(.*)$", line)
            if m and not m.group(2).startswith("//"):
                key = m.group(1).lower()
                value = m.group(2).strip()
                if key == "files":
                    files += value.split()
                else:
                    stanza[key] = value
            elif key == "files" and line.strip():
                files += line.split()
        for f in files:
            out[f] = stanza
    return out


def scribus_licences(text: str) -> dict[str, tuple[str, str]]:
    """{template folder: (licence, copyright)} from scribus-template's copyright file, which is not
    machine-readable: sections separated by dashed lines, each 'Copyright (c) YEAR Name:' followed by
    '- Title (folder)' lines, and the section's licence text."""
    out: dict[str, tuple[str, str]] = {}
    for section in re.split(r"\n-{10,}\n", text):
        licence, free = classify_licence_text(section)
        if not free and re.search(r"GNU General Public License.*?version 2 of the License, or\s+\(at your option\)",
                                  " ".join(section.split())):
            licence = "GPL-2+"
        holder = ""
        for line in section.splitlines():
            m = re.match(r"^\s*Copyright \(c\)\s*(.*?):?\s*$", line)
            if m:
                holder = m.group(1)
                continue
            m = re.match(r"^\s*(?:[-*]\s+)?(.+?):\s*$", line)
            if m and "@" in m.group(1):  # 'Name <mail>:' opens a list under a shared year
                holder = m.group(1)
                continue
            m = re.match(r"^\s*-\s+.*\((\S+)\)\s*$", line)
            if m:
                out[m.group(1)] = (licence, holder)
    return out
