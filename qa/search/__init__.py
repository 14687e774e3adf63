"""From a question to cited passages: analyse it once (`query`, `answer_type`), rank
candidates (`retriever`), judge whether they answer (`judge`), and say so
(`answer`); follow-up questions are rewritten first (`followup`)."""
