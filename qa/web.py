"""The web chat: a Gradio ChatInterface over `qa.answer.answer`.

This is the only module that imports gradio. Each reply lists the retrieved
passages, numbered, with the answering sentence highlighted (`<mark>`) and a
citation line under each; a question nothing answers gets the short "not found"
message; a user's mistake (empty question, no index yet) gets its one-line
explanation instead of a traceback.

Nothing here reaches the network: analytics and the version check are off, there
is no share link, and the page uses the theme's local fonts only.
"""

from __future__ import annotations

import os
import sys
import threading
import traceback

# Must be set before gradio is imported: no telemetry, no version check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from qa.answer import answer, escape_markdown  # noqa: E402
from qa.errors import QAError  # noqa: E402
from qa.settings import Settings  # noqa: E402

TITLE = "中文新闻问答 · Chinese news QA"
DESCRIPTION = (
    "用简体中文、繁體中文或英文提问；每个回答列出文章中的原文段落，附编号引用，"
    "最能回答问题的句子以<mark>高亮</mark>标出。  \n"
    "Ask in simplified or traditional Chinese, or in English. Each answer lists the source "
    "passages with numbered citations 《title》 (source, date) ¶paragraph, the answering "
    "sentence highlighted."
)
EXAMPLES = [
    "知识城与新加坡签署了多少份合作备忘录？",
    "知識城在人形機器人領域有布局嗎？",
    "What talent programme does Luoyang plan to implement?",
    "昆山高新区如何开展安全生产工作？",
]
EMPTY_REPLY = (
    "请输入一个关于文章的问题，例如：知识城与新加坡签署了多少份合作备忘录？  \n"
    "Please type a question about the articles, e.g. "
    "*What talent programme does Luoyang plan to implement?*"
)
ERROR_REPLY = "出错了，请稍后再试。 Something went wrong answering this question; the server log has the details."
# The highlight stays readable in light and dark themes.
CSS = "mark { background: #ffe066; color: #1a1a1a; padding: 0 2px; border-radius: 2px; }"


# -- replies --------------------------------------------------------------------

_ANSWER_LOCK = threading.Lock()


def respond(message: str, history=None, *, settings: Settings | None = None, retriever=None) -> str:
    """The chat reply to `message`, as Markdown (with `<mark>` around the answering sentences).

    `history` (the earlier turns, OpenAI-style dicts) is ignored: every question stands alone.
    `retriever` overrides the cached one built from `settings` (tests).
    """
    if not isinstance(message, str) or not message.strip():
        return EMPTY_REPLY
    try:
        # Gradio runs the page's submit and the /ask API as separate functions, each
        # with its own queue; the encoder and the index caches are shared, so
        # questions are answered one at a time.
        with _ANSWER_LOCK:
            result = answer(message, settings=settings, retriever=retriever)
    except QAError as error:
        return f"⚠️ {escape_markdown(str(error), code_spans=True)}"
    except Exception:  # never show a traceback in the chat; keep it in the server log
        traceback.print_exc(file=sys.stderr)
        return ERROR_REPLY
    return result.markdown


# -- the app --------------------------------------------------------------------


def make_app(settings: Settings | None = None, *, retriever=None) -> gr.ChatInterface:
    """The chat page. `retriever` replaces the one loaded from `settings` (tests)."""
    settings = settings or Settings.load()

    def reply(message: str, history: list[dict]) -> str:
        return respond(message, history, settings=settings, retriever=retriever)

    chatbot = gr.Chatbot(
        label="问答 · QA",
        scale=1,
        height=560,
        latex_delimiters=[],  # "$" in news text is money, not maths
        placeholder="**中文新闻问答**  \n问一个关于文章的问题 · Ask a question about the articles",
        buttons=["copy"],
        feedback_options=None,
    )
    textbox = gr.Textbox(
        placeholder="输入问题… / Type a question…",
        show_label=False,
        scale=7,
        autofocus=True,
        max_lines=4,
        submit_btn=True,
        stop_btn=False,
    )
    return gr.ChatInterface(
        reply,
        chatbot=chatbot,
        textbox=textbox,
        title=TITLE,
        description=DESCRIPTION,
        examples=EXAMPLES,
        cache_examples=False,
        run_examples_on_click=True,
        flagging_mode="never",
        analytics_enabled=False,
        fill_height=True,
        api_name="ask",
    )


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, *, block: bool = True) -> None:
    """Start the server; with `block=False` it runs in a background thread (tests)."""
    app.queue(default_concurrency_limit=1)
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        ssr_mode=False,
        mcp_server=False,
        quiet=True,
        show_error=False,
        prevent_thread_lock=not block,
        theme=gr.themes.Default(),
        css=CSS,
    )


def prepare_index(settings: Settings, build_if_needed: bool = True) -> None:
    """Build the index first when it is missing, stale or unusable (and allowed to)."""
    from qa.index import build_index, index_status

    status = index_status(settings)
    if status["state"] == "ready" or not build_if_needed:
        return
    where, corpus = settings.index_dir, settings.corpus_dir
    if status["state"] == "missing":
        print(f"no index in {where} yet; building it from {corpus} first")
    elif status["state"] == "stale":
        print(f"index in {where} is out of date ({', '.join(status['changes'][:3])}); rebuilding it from {corpus} first")
    else:
        problem = str(status.get("problem", "")).split("; run `qa build`")[0]
        print(f"{problem}; rebuilding the index from {corpus} first")
    print(build_index(settings, progress=True, log=print))


def warm_up(settings: Settings, retriever=None) -> None:
    """Load the index, the model and the English dictionary, so the first user waits less."""
    for question in ("知识城", "Knowledge City"):
        answer(question, settings=settings, retriever=retriever)


def serve(
    settings: Settings | None = None,
    build_if_needed: bool = True,
    *,
    retriever=None,
    block: bool = True,
) -> gr.Blocks:
    """Build the index if needed, load the model, then serve the chat on
    http://settings.host:settings.port.

    Raises:
        QAError: the corpus cannot be read, the model cannot be loaded, or (with
            `build_if_needed=False`) there is no usable index.
    """
    settings = settings or Settings.load()
    if retriever is None:
        prepare_index(settings, build_if_needed)
        print(f"loading the index and the embedding model {settings.embed_model}")
    warm_up(settings, retriever)
    app = make_app(settings, retriever=retriever)
    print(f"serving the chat on http://{settings.host}:{settings.port} (Ctrl+C to stop)")
    launch(app, settings.host, settings.port, block=block)
    return app
