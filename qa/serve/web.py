"""The web chat and its JSON API, over `qa.serve.service.ChatService`.

This is the only module that imports gradio. The page: the chat (numbered passages,
citations, the answering sentence highlighted, follow-ups resolved), an article
panel that opens any passage of any answer in its article, settings (passages per
answer, ranking mode, a filter by article or date) and the index (what is indexed,
whether it is stale, a rebuild that never stops the chat, uploads). For programs:
`POST /api/ask` (plain JSON over HTTP) and the gradio endpoint `/search` (the same
JSON, for `gradio_client`); `/ask` still returns the chat's Markdown.

Everything a user or an article typed is shown as text: Markdown and HTML are
escaped before they reach the page. Nothing here reaches the network: analytics and
the version check are off, and a share link, another address or a login only come
from explicit settings (QA_SHARE, QA_HOST, QA_AUTH).
"""

from __future__ import annotations

import html
import os
from pathlib import Path

# Must be set before gradio is imported: no telemetry, no version check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from qa.errors import QAError, SettingsError  # noqa: E402
from qa.limits import MODES  # noqa: E402
from qa.search.answer import escape_markdown, to_markdown  # noqa: E402
from qa.serve.http import RequestGuard, ask_json, client_of, make_api  # noqa: E402
from qa.serve.limits import LoginGuard, WebSettings  # noqa: E402
from qa.serve.server import HTTPServer  # noqa: E402
from qa.serve.service import ERROR_MESSAGE, UPLOAD_SUFFIXES, ChatService  # noqa: E402
from qa.serve.views import ArticleView, Reply, parse_filter  # noqa: E402
from qa.settings import Settings  # noqa: E402

TITLE = "中文新闻问答 · Chinese news QA"
DESCRIPTION = (
    "用简体中文、繁體中文或英文提问；每个回答列出文章中的原文段落，附编号引用，"
    "最能回答问题的句子以<mark>高亮</mark>标出。点一个回答，在右侧「原文」中打开它的段落。  \n"
    "Ask in simplified or traditional Chinese, or in English. Each answer lists the source "
    "passages with numbered citations, the answering sentence highlighted; click an answer "
    "to open its passages in their articles (right, *Article*)."
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
ERROR_REPLY = ERROR_MESSAGE
FOUND = "✓ 找到 · Found"
# The verdict line's style and sign; "found" shows FOUND, the others the answer's message.
_VERDICT_LINE = {"found": ("qa-found", ""), "unsure": ("qa-unsure", "? "), "not_found": ("qa-not-found", "✗ ")}
# The highlight stays readable in light and dark themes; long unbroken lines wrap
# instead of widening the page.
CSS = """
mark { background: #ffe066; color: #1a1a1a; padding: 0 2px; border-radius: 2px; }
.message, .qa-article { overflow-wrap: anywhere; }
.qa-verdict { font-weight: 600; }
.qa-found { color: #1a7f37; }
.qa-unsure { color: #9a6700; }
.qa-not-found { color: #b42318; }
.qa-stale { color: #9a6700; }
.qa-resolved { opacity: 0.8; font-style: italic; }
#qa-article { max-height: 520px; overflow-y: auto; }
.qa-article .qa-meta { opacity: 0.75; font-size: 0.9em; }
.qa-article .qa-passage { border-left: 3px solid #ffb300; padding-left: 8px; }
.qa-article .qa-pnum { opacity: 0.6; font-size: 0.85em; margin-right: 4px; }
"""
# After the article panel changes: bring the answering sentence into view.
SCROLL_TO_MARK = (
    "() => { const mark = document.querySelector('#qa-article mark');"
    " if (mark) mark.scrollIntoView({block: 'nearest'}); }"
)


# -- replies -----------------------------------------------------------------------------


def reply_markdown(reply: Reply) -> str:
    """The chat's Markdown for a reply: the resolved follow-up, the stale note, the
    verdict line, then the numbered passages with citations (all text escaped)."""
    if reply.error:
        return f"⚠️ {escape_markdown(reply.error, code_spans=True)}"
    result = reply.answer
    lines = []
    if reply.resolved:
        lines.append(f'<span class="qa-resolved">↪ 理解为 · read as: {escape_markdown(reply.resolved)}</span>')
    stale = result.stale
    if stale:
        lines.append(
            f'<span class="qa-stale">⚠ 索引已过期，答案来自上次建立的索引 · The index is out of date '
            f"({escape_markdown(stale)}); answers come from the last build. Rebuild it under *Index*.</span>"
        )
    kind, sign = _VERDICT_LINE[result.verdict]
    verdict = FOUND if result.verdict == "found" else escape_markdown(result.message)
    lines.append(f'<span class="qa-verdict {kind}">{sign}{verdict}</span>')
    passages = to_markdown("found", result.passages, "")  # the verdict line is above
    if passages:
        lines += ["", passages]
    return "\n".join(lines)


def respond(
    message,
    history=None,
    *,
    settings: Settings | None = None,
    retriever=None,
    service: ChatService | None = None,
    **options,
) -> str:
    """The chat reply to `message`, as Markdown (with `<mark>` around the answering sentences).

    `history` holds the earlier stand-alone questions (strings, oldest first) or the
    chat's messages (OpenAI-style dicts); a follow-up is resolved against the last.
    `options` go to `ChatService.ask` (k, mode, where, client).
    """
    if not isinstance(message, str) or not message.strip():
        return EMPTY_REPLY
    service = service or ChatService(settings or Settings.load(), WebSettings(rate_limit=0), retriever=retriever)
    return reply_markdown(service.ask(message, history=_questions(history), **options))


def _questions(history) -> list[str]:
    """Earlier user questions from a history of strings or of chat messages."""
    questions = []
    for turn in history or []:
        if isinstance(turn, str):
            questions.append(turn)
        elif isinstance(turn, dict) and turn.get("role") == "user" and isinstance(turn.get("content"), str):
            questions.append(turn["content"])
    return questions


# -- the article panel -------------------------------------------------------------------


def article_html(view: ArticleView | None) -> str:
    """The article panel: title, date, source file, the passage's paragraphs and their
    neighbours, the answering sentence in `<mark>`. Every text is escaped."""
    if view is None:
        return '<div class="qa-article"><p class="qa-meta">点一个回答的段落，在这里看它的原文。 Choose a passage of an answer to read it in its article.</p></div>'
    parts = ['<div class="qa-article">']
    if view.title:
        parts.append(f"<h3>《{html.escape(view.title)}》</h3>")
    meta = [piece for piece in (view.date, view.publication, view.source) if piece]
    if view.paragraph_count:
        meta.append(f"{view.paragraph_count} ¶")
    if meta:
        parts.append(f'<p class="qa-meta">{" · ".join(html.escape(piece) for piece in meta)}</p>')
    if view.note:
        parts.append(f'<p class="qa-meta">{html.escape(view.note)}</p>')
    for paragraph in view.paragraphs:
        text = paragraph.text
        if paragraph.highlight:
            a, b = paragraph.highlight
            body = f"{html.escape(text[:a])}<mark>{html.escape(text[a:b])}</mark>{html.escape(text[b:])}"
        else:
            body = html.escape(text)
        kind = "qa-para qa-passage" if paragraph.in_passage else "qa-para"
        parts.append(f'<p class="{kind}"><span class="qa-pnum">¶{paragraph.number}</span>{body}</p>')
    parts.append("</div>")
    return "\n".join(parts)


def _passage_choices(turn: int, passages: list[dict]) -> list[tuple[str, str]]:
    labels = []
    for number, passage in enumerate(passages, 1):
        label = f"[{number}] 《{passage['title']}》 ¶{passage['paragraph']}"
        labels.append((label if len(label) <= 60 else label[:57] + "…", f"{turn}:{number - 1}"))
    return labels


# -- the index panel ------------------------------------------------------------------------


def status_markdown(status: dict) -> str:
    """The index panel's text, from `ChatService.status()`."""
    state = status.get("state", "missing")
    heading = {
        "ready": "✓ 索引是最新的 · The index matches the articles",
        "stale": "⚠ 索引已过期 · The index is out of date",
        "missing": "✗ 还没有索引 · No index yet",
        "unusable": "✗ 索引不可用 · The index cannot be used",
    }.get(state, state)
    lines = [f"**{escape_markdown(heading)}**", ""]
    if state == "stale":
        changes = status.get("changes") or []
        lines.append(
            f"- changed since the build: {escape_markdown(', '.join(changes[:8]))}" + (" …" if len(changes) > 8 else "")
        )
    if status.get("problem"):
        lines.append(f"- {escape_markdown(str(status['problem']), code_spans=True)}")
    if status.get("articles") is not None:
        lines.append(f"- 文章 articles: {status.get('articles')} · 段落 passages: {status.get('passages')}")
        lines.append(
            f"- 模型 model: {escape_markdown(str(status.get('model')))} · 建立于 built: {escape_markdown(str(status.get('built_at')))}"
        )
    for skipped in status.get("skipped") or []:
        lines.append(
            f"- skipped {escape_markdown(str(skipped.get('source')))}: {escape_markdown(str(skipped.get('reason')))}"
        )
    rebuild = status.get("rebuild") or {}
    if rebuild.get("running"):
        last = rebuild.get("log")[-1] if rebuild.get("log") else "starting"
        lines.append(f"- ⏳ 正在重建 · rebuilding (the chat keeps answering): {escape_markdown(last)}")
    elif rebuild.get("error"):
        lines.append(f"- ✗ 上次重建失败 · last rebuild failed: {escape_markdown(rebuild['error'], code_spans=True)}")
    elif rebuild.get("result"):
        lines.append(f"- ✓ 上次重建 · last rebuild: {escape_markdown(rebuild['result'])}")
    return "\n".join(lines)


# -- the app -------------------------------------------------------------------------------


def make_app(
    settings: Settings | None = None,
    *,
    retriever=None,
    encoder=None,
    service: ChatService | None = None,
    web_settings: WebSettings | None = None,
) -> gr.Blocks:
    """The chat page. `retriever` (fixed) or `encoder` (batched, rebuilds picked up)
    replace the model loaded from `settings` (tests)."""
    settings = settings or Settings.load()
    service = service or ChatService(settings, web_settings, retriever=retriever, encoder=encoder)

    def on_question(message, chat, turns, k, mode, sources, date_from, date_to, follow, request: gr.Request):
        chat, turns = list(chat or []), list(turns or [])
        if not isinstance(message, str) or not message.strip():
            return "", chat + [_bot(EMPTY_REPLY)], turns, gr.update(), gr.update()
        history = [turn["resolved"] for turn in turns] if follow else []
        try:
            where = parse_filter(sources, date_from, date_to)
        except SettingsError as error:
            reply = Reply(message, error=str(error), status=400)
        else:
            reply = service.ask(message, k=int(k), mode=mode, where=where, history=history, client=client_of(request))
        passages = reply.to_dict()["passages"]
        turns.append({"resolved": "" if reply.error else (reply.resolved or message.strip()), "passages": passages})
        # The question is shown as the text that was typed: escaped, never rendered.
        chat += [{"role": "user", "content": escape_markdown(message)}, _bot(reply_markdown(reply))]
        if not passages:
            return "", chat, turns, gr.update(choices=[], value=None), article_html(None)
        turn = len(turns) - 1
        choices = _passage_choices(turn, passages)
        return (
            "",
            chat,
            turns,
            gr.update(choices=choices, value=choices[0][1]),
            article_html(service.article(passages[0])),
        )

    def open_passage(choice, turns):
        try:
            turn, number = (int(part) for part in str(choice).split(":"))
            passage = turns[turn]["passages"][number]
        except (ValueError, IndexError, KeyError, TypeError):
            return article_html(None)
        return article_html(service.article(passage))

    def select_answer(turns, event: gr.SelectData):
        # Any message of a turn (question or answer) lists that turn's passages.
        index = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        turn = int(index or 0) // 2
        if not turns or turn >= len(turns) or not turns[turn]["passages"]:
            return gr.update(), gr.update(), gr.update()
        passages = turns[turn]["passages"]
        choices = _passage_choices(turn, passages)
        return (
            gr.update(choices=choices, value=choices[0][1]),
            article_html(service.article(passages[0])),
            gr.Tabs(selected="article"),
        )

    def refresh_index():
        status = service.status()
        running = bool((status.get("rebuild") or {}).get("running"))
        return status_markdown(status), gr.Timer(active=running), gr.update(choices=_article_choices())

    def rebuild(full):
        if not service.start_rebuild(full=bool(full)):
            gr.Info("已经在重建 · A rebuild is already running.")
        return status_markdown(service.status()), gr.Timer(active=True)

    def upload(path):
        if not path:
            return gr.update(), gr.update(), None
        try:
            message = service.add_article(Path(path).name, Path(path).read_bytes())
        except QAError as error:
            message = str(error)
        except OSError as error:
            message = f"cannot read the upload: {error.strerror}"
        finally:
            _remove_upload(Path(path))
        gr.Info(message)
        return status_markdown(service.status()), gr.Timer(active=True), None

    def _article_choices():
        return [(f"{title} ({source})", source) for title, source in service.articles()]

    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_height=True) as app:
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
        turns = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="问答 · QA",
                    height=560,
                    latex_delimiters=[],  # "$" in news text is money, not maths
                    placeholder="**中文新闻问答**  \n问一个关于文章的问题 · Ask a question about the articles",
                    buttons=["copy"],
                    feedback_options=None,
                    elem_id="qa-chat",
                )
                textbox = gr.Textbox(
                    placeholder="输入问题… / Type a question…",
                    show_label=False,
                    autofocus=True,
                    max_lines=4,
                    submit_btn=True,
                    elem_id="qa-question",
                )
                gr.Examples(EXAMPLES, inputs=textbox, label="例子 · Examples")
            with gr.Column(scale=2):
                with gr.Tabs() as tabs:
                    with gr.Tab("原文 · Article", id="article"):
                        passage = gr.Radio(label="段落 · Passages", choices=[], elem_id="qa-passages")
                        article = gr.HTML(article_html(None), elem_id="qa-article")
                    with gr.Tab("设置 · Settings", id="settings"):
                        k = gr.Slider(
                            1,
                            20,
                            value=min(settings.top_k, 20),
                            step=1,
                            label="每个回答的段落数 · Passages per answer",
                            elem_id="qa-k",
                        )
                        mode = gr.Radio(
                            list(MODES[::-1]),
                            value="hybrid",
                            label="排序 · Ranking (hybrid = dense + lexical)",
                            elem_id="qa-mode",
                        )
                        sources = gr.Dropdown(
                            choices=[],
                            multiselect=True,
                            label="只搜索这些文章 · Only these articles (none: all)",
                            elem_id="qa-sources",
                        )
                        with gr.Row():
                            date_from = gr.Textbox(label="从 · From", placeholder="YYYY-MM-DD", elem_id="qa-from")
                            date_to = gr.Textbox(label="到 · To", placeholder="YYYY-MM-DD", elem_id="qa-to")
                        follow = gr.Checkbox(
                            True,
                            label="追问：把简短的追问接上一个问题理解 · Read short follow-ups against the previous question",
                        )
                    with gr.Tab("索引 · Index", id="index") as index_tab:
                        status = gr.Markdown(elem_id="qa-status")
                        with gr.Row():
                            full = gr.Checkbox(False, label="从头重建 · From scratch")
                            rebuild_button = gr.Button("重建索引 · Rebuild", elem_id="qa-rebuild")
                        uploaded = gr.File(
                            label=f"添加文章 · Add an article ({' '.join(UPLOAD_SUFFIXES)})",
                            file_types=list(UPLOAD_SUFFIXES),
                            elem_id="qa-upload",
                        )
                        timer = gr.Timer(1.0, active=False)

        chat_inputs = [textbox, chatbot, turns, k, mode, sources, date_from, date_to, follow]
        textbox.submit(
            on_question, chat_inputs, [textbox, chatbot, turns, passage, article], api_visibility="private"
        ).then(None, js=SCROLL_TO_MARK)
        passage.input(open_passage, [passage, turns], article, api_visibility="private").then(None, js=SCROLL_TO_MARK)
        chatbot.select(select_answer, [turns], [passage, article, tabs], api_visibility="private").then(
            None, js=SCROLL_TO_MARK
        )
        app.load(refresh_index, None, [status, timer, sources], api_visibility="private")
        timer.tick(refresh_index, None, [status, timer, sources], api_visibility="private")
        # Opening the tab shows the index as it is now, not as it was when the page loaded.
        index_tab.select(refresh_index, None, [status, timer, sources], api_visibility="private")
        rebuild_button.click(rebuild, [full], [status, timer], api_visibility="private")
        uploaded.upload(upload, [uploaded], [status, timer, uploaded], api_visibility="private")

        def search(
            question: str,
            k: int = settings.top_k,
            mode: str = "hybrid",
            sources: list[str] | None = None,
            date_from: str = "",
            date_to: str = "",
            history: list[str] | None = None,
            request: gr.Request = None,
        ) -> dict:
            """The passages that answer `question`, as data: text, score, citation, highlight
            offsets, and whether they answer it (docs/usage.md, "JSON API")."""
            return ask_json(service, question, k, mode, sources, date_from, date_to, history, client_of(request))[0]

        def ask_markdown(question: str, request: gr.Request = None) -> str:
            """The chat's reply to `question`, as Markdown."""
            return respond(question, service=service, client=client_of(request))

        gr.api(search, api_name="search")
        gr.api(ask_markdown, api_name="ask")
    app.qa_service = service  # the HTTP routes and tests reach the service through the app
    return app


def _remove_upload(path: Path) -> None:
    """Delete gradio's copy of an upload once it is handled (it kept every one), and its
    folder when that is empty; only inside gradio's upload folder."""
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()).resolve()
    path = path.resolve()
    if not path.is_relative_to(folder) or path == folder:
        return
    path.unlink(missing_ok=True)
    if path.parent != folder:
        try:
            path.parent.rmdir()  # gradio's one folder per upload (named by its hash)
        except OSError:
            pass  # not empty: another upload of the same bytes is in it


def _bot(text: str) -> dict:
    return {"role": "assistant", "content": text}


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, *, block: bool = True) -> None:
    """Serve the page and the JSON API on `host`:`port`; with `block=False` the server
    runs in a background thread (tests) and `app.close()` stops it.

    The JSON routes are on the app before it serves (they answered 404 for a moment
    while gradio's own launch started), behind the guard of body sizes and failed logins
    (`qa.serve.http.RequestGuard`), on a server with request deadlines (`qa.serve.server`).

    Raises:
        SettingsError: the address cannot be listened on (the message says why).
    """
    service: ChatService = app.qa_service
    web = service.web
    # Questions run side by side (the model and the index are read-only while serving);
    # the micro-batcher turns concurrent questions into one model call.
    app.queue(default_concurrency_limit=64)
    app.max_threads = app._queue.max_thread_count = 80
    api = make_api(service)
    gr.mount_gradio_app(
        api,
        app,
        path="/",
        server_name=host,
        server_port=port,
        auth=web.auth,
        # Checked by gradio while the upload streams in, before it is stored.
        max_file_size=web.max_upload_bytes,
        ssr_mode=False,
        mcp_server=False,
        show_error=False,
        footer_links=["api"],
        theme=gr.themes.Default(),
        css=CSS,
        app_kwargs={"openapi_url": None},  # gradio's own schema is at /gradio_api/openapi.json, behind the login
    )
    guarded = RequestGuard(api, max_upload_bytes=web.max_upload_bytes, logins=LoginGuard() if web.auth else None)
    server = HTTPServer(
        guarded, host, port, trusted_proxies=web.trusted_proxies, request_timeout_s=web.request_timeout_s
    )
    server.start()
    # What gr.Blocks.launch sets, for app.close() and app.block_thread(); the app that
    # serves is the one mounted last.
    app.server, app.is_running, app.server_name, app.server_port = server, True, host, port
    app.server_app = app.app = api.routes[-1].app
    if web.share:
        _share(app, host, port)
    if block:
        app.block_thread()


def _share(app: gr.Blocks, host: str, port: int) -> None:
    """Ask gradio for a public link to the chat (QA_SHARE). Every client then reaches it
    from this machine's address, so they share one rate limit and one login record."""
    from gradio import networking

    local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    try:
        url = networking.setup_tunnel(local, port, app.share_token, None, None)
    except Exception as error:  # no internet, or gradio's share server refused
        print(f"warning: no share link ({error}); the chat is served on http://{host}:{port} only")
        return
    print(f"share link: {url}")


def prepare_index(settings: Settings, build_if_needed: bool = True) -> None:
    """Build the index first when it is missing, stale or unusable (and allowed to)."""
    from qa.index.build import build_index
    from qa.index.freshness import index_status

    status = index_status(settings)
    if status["state"] == "ready" or not build_if_needed:
        return
    where, corpus = settings.index_dir, settings.corpus_dir
    if status["state"] == "missing":
        print(f"no index in {where}/ yet; building it from the articles in {corpus}/ first")
    elif status["state"] == "stale":
        print(
            f"index in {where} is out of date ({', '.join(status['changes'][:3])}); rebuilding it from {corpus} first"
        )
    else:
        problem = str(status.get("problem", "")).split("; run `qa build`")[0]
        print(f"{problem}; rebuilding the index from {corpus} first")
    print(build_index(settings, progress=True, log=print))


def serve(
    settings: Settings | None = None,
    build_if_needed: bool = True,
    *,
    retriever=None,
    encoder=None,
    web_settings: WebSettings | None = None,
    block: bool = True,
) -> gr.Blocks:
    """Build the index if needed, load the model, then serve the chat on
    http://settings.host:settings.port.

    Raises:
        QAError: the corpus cannot be read, the model cannot be loaded, or (with
            `build_if_needed=False`) there is no usable index.
    """
    settings = settings or Settings.load()
    web_settings = web_settings or WebSettings.load()
    if retriever is None and encoder is None:
        prepare_index(settings, build_if_needed)
        print(f"loading the index and the embedding model {settings.embed_model}")
    app = make_app(settings, retriever=retriever, encoder=encoder, web_settings=web_settings)
    app.qa_service.warm_up()
    if settings.host not in ("127.0.0.1", "localhost", "::1") and web_settings.auth is None:
        print(f"warning: serving on {settings.host} without a login; set QA_AUTH=user:password to require one")
    launch(app, settings.host, settings.port, block=False)
    print(f"serving the chat on http://{settings.host}:{settings.port} (Ctrl+C to stop)")
    if block:
        app.block_thread()
    return app
