/**
 * Records a classifier keeps of an attack: a moderation result, a guardrail log line, an
 * evaluation case (`{"input": "Ignore all previous...", "flagged": true}`). The text such a record
 * reports on is shown as data, not said to the reader: the response layer marks it in JSON bodies
 * (inspect/body-fragments.ts), the engine in JSON lines inside any text (engine.ts). Pure.
 */

/**
 * The key of the text a classifier's record reports on: `input`, `text`, `prompt`, `excerpt`,
 * `matched_text`, `user_input`, `evidence`, ... (a moderation result, a guardrail log line, an
 * evaluation case).
 */
export const REPORTED_KEY =
  /^(?:(?:user|raw|original|source|flagged|matched|offending|attack|injected|input|prompt|sample|test)[_-]?)?(?:input|text|prompt|content|excerpt|snippet|sample|match|matched|evidence|quote|payload|query|example|message|string|span|case)s?$|^(?:eingabe|text|texto|texte|entrada|entrée|contenu|conteúdo|contenido|inhalt|текст|ввод|сообщение|запрос|内容|输入|文本|原文|入力|本文|注入文|プロンプト|입력|내용|본문|프롬프트)$/i;
/** A flag set to true that says the record's text is an attack (`flagged`, `is_injection`, `jailbreak_detected`, `blocked`). */
const ATTACK_FLAG = /flag|inject|jailbreak|attack|malicious|unsafe|harmful|poison|exfil|threat|violat|toxic|abus|detect|block|markiert|signal|sinaliz|marcad|помеч|заблок|标记|拦截|違反|フラグ|검출|차단|탐지/i;
/** A label that says so (`"label": "prompt_injection"`, `"verdict": "block"`). */
const ATTACK_LABEL =
  /inject|jailbreak|attack|malicious|unsafe|harm|poison|exfil|threat|violat|toxic|abus|block|flag|den(?:y|ied)|reject|refus|quarantin|angriff|ataque|attaque|ataca|bloqu|blockiert|инъекц|атак|заблок|攻击|拦截|拒绝|注入|攻撃|ブロック|拒否|공격|차단|거부|주입/i;
/** Keys whose value is such a label, or a list of them. */
const LABEL_KEY =
  /^(?:labels?|verdict|classification|class|category|decision|action|outcome|status|suggestion|recommendation|prediction|predicted(?:_label)?|expected(?:_(?:label|behaviou?r))?|attack_type|detection|risk|aktion|urteil|ergebnis|acción|ação|action|résultat|resultado|decisão|decisión|действие|вердикт|результат|решение|判定|判断|结果|建议|処理|判定結果|結果|판정|결과|조치)$/i;
/** Keys of an object (or list) of labels or flags by category (`"categories": {"prompt_attack": true}`, `"scores": {"prompt_injection": 0.97}`). */
const CATEGORIES_KEY = /^(?:categories|category_scores|scores|labels|flags|detections|results|kategorien|categorias|categorías|catégories|категории|类别|标签|カテゴリ|카테고리)$/i;

/**
 * Whether a JSON object is a classifier's record of an attack: a flag set to true, a label
 * naming an attack (alone or in a list), or an object of categories with one such set to true.
 * Its text (REPORTED_KEY) is what was flagged, shown as data, not said to the reader.
 */
export function isVerdict(o: Record<string, unknown>): boolean {
  for (const key in o) {
    if (!Object.hasOwn(o, key)) continue;
    const v = o[key];
    if (v === true && ATTACK_FLAG.test(key)) return true;
    if (typeof v === "string" && v.length <= 64 && LABEL_KEY.test(key) && ATTACK_LABEL.test(v)) return true;
    if (Array.isArray(v) && (LABEL_KEY.test(key) || CATEGORIES_KEY.test(key))) {
      // `["jailbreak"]`, or `[{"label": "prompt_injection", "confidence": 0.97}]` (one level).
      for (const x of v.length <= 64 ? v : v.slice(0, 64)) {
        if (typeof x === "string" && x.length <= 64 && ATTACK_LABEL.test(x)) return true;
        if (x !== null && typeof x === "object" && !Array.isArray(x) && isLabelled(x as Record<string, unknown>)) return true;
      }
    }
    if (v !== null && typeof v === "object" && !Array.isArray(v) && CATEGORIES_KEY.test(key)) {
      // A category set, or scored above even, by an attack's name.
      const c = v as Record<string, unknown>;
      for (const k in c) if (Object.hasOwn(c, k) && (c[k] === true || (typeof c[k] === "number" && (c[k] as number) >= 0.5)) && ATTACK_LABEL.test(k)) return true;
    }
  }
  return false;
}

/** Whether an object names an attack in a label field (`{"label": "prompt_injection"}`). */
function isLabelled(o: Record<string, unknown>): boolean {
  for (const key in o) {
    const v = o[key];
    if (Object.hasOwn(o, key) && typeof v === "string" && v.length <= 64 && LABEL_KEY.test(key) && ATTACK_LABEL.test(v)) return true;
  }
  return false;
}

/** The most records one JSON value is searched for (a log of thousands of lines is read line by line). */
const MAX_RECORDS = 256;

/**
 * The strings a JSON value's classifier records report on: each string member under
 * REPORTED_KEY of an object that isVerdict, at any depth (`{"results": [{"flagged": true, "input":
 * "..."}]}`), in document order.
 */
export function reportedStrings(value: unknown): string[] {
  const out: string[] = [];
  let objects = 0;
  const walk = (v: unknown, depth: number): void => {
    if (v === null || typeof v !== "object" || depth > 16 || objects >= MAX_RECORDS) return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
      return;
    }
    objects++;
    const o = v as Record<string, unknown>;
    const verdict = isVerdict(o);
    for (const key in o) {
      if (!Object.hasOwn(o, key)) continue;
      const x = o[key];
      if (typeof x === "string") {
        if (verdict && x.length > 0 && REPORTED_KEY.test(key)) out.push(x);
      } else walk(x, depth + 1);
    }
  };
  walk(value, 0);
  return out;
}
