/**
 * Records a classifier keeps of an attack: a moderation result, a guardrail log line, an
 * evaluation case (`{"input": "Ignore all previous...", "is_injection": true}`). The text such a record
 * reports on is shown as data, not said to the reader: the response layer marks it in JSON bodies
 * (inspect/body-fragments.ts), the engine in JSON lines inside any text (engine.ts). Pure.
 */

/**
 * The key of the text a classifier's record reports on: `input`, `text`, `prompt`, `excerpt`,
 * `matched_text`, `user_input`, `input_preview`, `evidence`, ... (a moderation result, a
 * guardrail log line, an evaluation case); and what the classifier says of it (`explanation`,
 * `rationale`, `analysis`: "asks the agent to ignore prior instructions"). Not `reason`, a label
 * key (a field that names an attack would make its own record a verdict and then be reported),
 * nor `description` or `summary`, which any record's author writes.
 */
export const REPORTED_KEY =
  /^(?:explanation|rationale|reasoning|analysis|justification)$|^(?:(?:user|raw|original|source|flagged|matched|offending|attack|injected|input|prompt|sample|test)[_-]?)?(?:input|text|prompt|content|excerpt|snippet|preview|sample|match|matched|evidence|quote|payload|query|example|message|string|span|case)s?$|^(?:eingabe|text|texto|texte|entrada|entrée|contenu|conteúdo|contenido|inhalt|текст|ввод|сообщение|запрос|内容|输入|文本|原文|入力|本文|注入文|プロンプト|입력|내용|본문|프롬프트)$/i;
/**
 * The words of a name or label that name an attack (a whole word, or a word starting with one of
 * these): a record of "flagged", "blocked" or "detected" alone says nothing of what was flagged
 * (a mail flagged for follow-up, a task labelled blocked), and "Blockchain" or "Pharmacy" holds no
 * attack.
 */
const ATTACK_WORD = /^(?:inject|jailbreak|attack|malicious|unsafe|harmful|harm$|exfiltrat|poison|toxic|abus|threat|untrusted|suspicious|angriff|ataque|attaque|injec|инъекц|атак)/;
/** Attacks named by two words, neither an attack alone (`instruction-override`, `covert_action`, `embedded_instruction`). */
const ATTACK_PHRASE = /\b(?:instructions? override|prompt override|covert actions?|embedded instructions?|hidden instructions?|role spoof\w*|tool poison\w*|credential (?:theft|harvest\w*|phish\w*))\b/;
/** Scripts written without spaces: the word is found inside the label. */
const ATTACK_CJK = /攻击|注入|攻撃|공격|주입|越狱|脱獄|탈옥/;
/** Words that turn a label or a name into its opposite ("not_flagged", "benign, not an injection", "non_toxic", "no_attack"). */
const NEGATING_WORD = /^(?:not|no|non|none|never|false|benign|safe|clean|normal|pass|passed|allowed|ok|kein|keine|sin|sem|sans|pas|нет|не|без)$/;
const NEGATING_CJK = /未|非|无|無|不|없|아님|안전|正常|防御成功|防御/;
/** Keys whose value is a label, or a list of them. */
const LABEL_KEY =
  /^(?:labels?|verdict|classification|class|category|decision|action|outcome|status|suggestion|recommendation|prediction|predicted(?:_label)?|expected(?:_(?:label|behaviou?r))?|attack_type|detection|risk|event|event_type|alert|finding|reason|aktion|urteil|ergebnis|acción|ação|action|résultat|resultado|decisão|decisión|действие|вердикт|результат|решение|判定|判断|结果|建议|処理|判定結果|結果|판정|결과|조치)$/i;
/**
 * Keys naming the check a record is the result of (`"detector": "prompt_injection"`): a verdict
 * only beside a positive result (POSITIVE_KEY true, or SCORE_KEY 0.5 or more): a scanner's record
 * lists the checks that passed as well.
 */
const DETECTOR_KEY = /^(?:detector|check|checker|scanner|guard|guardrail|classifier|rule|rule_id|detector_id|check_id)$/i;
const POSITIVE_KEY = /^(?:flagged|detected|blocked|triggered|matched|hit|positive|is_positive)$/i;
const SCORE_KEY = /^(?:score|confidence|probability|prob|risk_score)$/i;
/** Keys of an object (or list) of labels or flags by category (`"categories": {"prompt_attack": true}`, `"scores": {"prompt_injection": 0.97}`). */
const CATEGORIES_KEY = /^(?:categories|category_scores|scores|labels|flags|detections|results|kategorien|categorias|categorías|catégories|категории|类别|标签|カテゴリ|카테고리)$/i;

/**
 * Whether a name or label (`is_injection`, `promptAttack`, `prompt_injection`, `攻撃成功`) names an
 * attack, word by word (snake, kebab, camel case and spaces apart), with no word that negates it.
 */
export function namesAttack(name: string): boolean {
  if (name.length > 64) return false;
  const words = name
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 0);
  if (words.some((w) => NEGATING_WORD.test(w)) || NEGATING_CJK.test(name)) return false;
  return words.some((w) => ATTACK_WORD.test(w)) || ATTACK_CJK.test(name) || ATTACK_PHRASE.test(words.join(" "));
}

/** A score of 0.5 or more (a number, or one kept as a string because its digits were many). */
const highScore = (v: unknown): boolean => (typeof v === "number" ? v >= 0.5 : typeof v === "string" && /^\d{0,3}(?:\.\d+)?$/.test(v) && Number(v) >= 0.5);

/**
 * Whether a JSON object is a classifier's record of an attack: a flag set to true whose name
 * names one (`"is_injection": true`, `"jailbreak_detected": true`), a label naming one
 * (`"label": "prompt_injection"`, alone, in a list, or in `[{"label": ...}]`), a check naming one
 * with a positive result (`"detector": "prompt_injection", "flagged": true`), or an object of
 * categories with one such set to true or scored 0.5 or more. Its text (REPORTED_KEY) is what
 * was flagged, shown as data, not said to the reader.
 */
export function isVerdict(o: Record<string, unknown>): boolean {
  // Whether the record's result is positive, found once (an object of many check keys would
  // otherwise read all its keys again for each).
  let isPositive: boolean | undefined;
  for (const key in o) {
    if (!Object.hasOwn(o, key)) continue;
    const v = o[key];
    if (v === true && namesAttack(key)) return true;
    if (typeof v === "string" && LABEL_KEY.test(key) && namesAttack(v)) return true;
    if (typeof v === "string" && DETECTOR_KEY.test(key) && namesAttack(v) && (isPositive ??= positive(o))) return true;
    if (Array.isArray(v) && (LABEL_KEY.test(key) || CATEGORIES_KEY.test(key))) {
      for (const x of v.length <= 64 ? v : v.slice(0, 64)) {
        if (typeof x === "string" && namesAttack(x)) return true;
        if (x !== null && typeof x === "object" && !Array.isArray(x) && isLabelled(x as Record<string, unknown>)) return true;
      }
    }
    if (v !== null && typeof v === "object" && !Array.isArray(v) && CATEGORIES_KEY.test(key)) {
      const c = v as Record<string, unknown>;
      for (const k in c) if (Object.hasOwn(c, k) && (c[k] === true || highScore(c[k])) && namesAttack(k)) return true;
    }
  }
  return false;
}

/** Whether a record's result is positive: a flag of POSITIVE_KEY set to true, or a score of SCORE_KEY 0.5 or more. */
function positive(o: Record<string, unknown>): boolean {
  for (const key in o) {
    if (!Object.hasOwn(o, key)) continue;
    if ((POSITIVE_KEY.test(key) && o[key] === true) || (SCORE_KEY.test(key) && highScore(o[key]))) return true;
  }
  return false;
}

/** Whether an object names an attack in a label field (`{"label": "prompt_injection"}`). */
function isLabelled(o: Record<string, unknown>): boolean {
  for (const key in o) {
    const v = o[key];
    if (Object.hasOwn(o, key) && typeof v === "string" && LABEL_KEY.test(key) && namesAttack(v)) return true;
  }
  return false;
}

/** The most records one JSON value is searched for (a log of thousands of lines is read line by line). */
const MAX_RECORDS = 256;

/**
 * The strings a JSON value's classifier records report on, with their keys: each string member
 * under REPORTED_KEY of an object that isVerdict, at any depth (`{"results": [{"is_injection":
 * true, "input": "..."}]}`), in document order.
 */
export function reportedStrings(value: unknown): [key: string, text: string][] {
  const out: [string, string][] = [];
  let objects = 0;
  // A record's verdict covers what it holds: the spans or findings listed under it.
  const walk = (v: unknown, depth: number, inherited: boolean): void => {
    if (v === null || typeof v !== "object" || depth > 16 || objects >= MAX_RECORDS) return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1, inherited);
      return;
    }
    objects++;
    const o = v as Record<string, unknown>;
    const verdict = inherited || isVerdict(o);
    for (const key in o) {
      if (!Object.hasOwn(o, key)) continue;
      const x = o[key];
      if (typeof x === "string") {
        if (verdict && x.length > 0 && REPORTED_KEY.test(key)) out.push([key, x]);
      } else walk(x, depth + 1, verdict);
    }
  };
  walk(value, 0, false);
  return out;
}
