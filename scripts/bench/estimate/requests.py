"""Chat requests for estimate_error.sh: text of several kinds (English
prose, English messages, Chinese, Japanese, C++ source, JSON), each as the
user message of a chat request, serialised as an OpenAI SDK sends it
(compact, UTF-8). Written to the file named by argv[1]."""
import gettext
import glob
import json
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def mo_strings(path):
    catalog = gettext.GNUTranslations(open(path, "rb"))._catalog
    return [(k, v) for k, v in catalog.items() if isinstance(k, str) and k and v]


def chunks(texts, size):
    out, cur = [], ""
    for t in texts:
        cur += t + "\n"
        if len(cur) >= size:
            out.append(cur)
            cur = ""
    return out


# vim's message catalogues (Debian vim-runtime): the same messages in
# English, Chinese and Japanese.
vim = "/usr/share/vim/vim90/lang"
zh = mo_strings(f"{vim}/zh_CN.UTF-8/LC_MESSAGES/vim.mo")
ja = mo_strings(f"{vim}/ja/LC_MESSAGES/vim.mo")
kinds = {
    "english-messages": chunks([k for k, _ in zh], 1500),
    "chinese-messages": chunks([v for _, v in zh], 600),
    "japanese-messages": chunks([v for _, v in ja], 600),
}
prose = []
for p in sorted(glob.glob(f"{root}/docs/*.md")):
    prose += [x for x in open(p).read().split("\n\n") if len(x) > 80]
kinds["english-prose"] = chunks(prose, 2000)
code = []
for p in sorted(glob.glob(f"{root}/actors/*.cpp")):
    code += open(p).read().split("\n\n")
kinds["cpp-source"] = chunks(code, 2000)
kinds["json-data"] = chunks(
    [open(p).read() for p in sorted(glob.glob(f"{root}/tests/data/**/*.json",
                                               recursive=True))], 2000)
requests = []
for kind, texts in kinds.items():
    for text in texts[:60]:
        body = {"model": "m",
                "messages": [{"role": "system",
                              "content": "You are a helpful assistant."},
                             {"role": "user", "content": text}]}
        requests.append({"kind": kind,
                         "body": json.dumps(body, ensure_ascii=False,
                                            separators=(",", ":"))})
json.dump(requests, open(sys.argv[1], "w"), ensure_ascii=False)
