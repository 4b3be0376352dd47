/**
 * Kubernetes manifests in and out: a multi-document YAML stream read into objects, each with its
 * place in the file for error messages, and objects written back as YAML. Both sides use YAML 1.1,
 * as kubectl does (sigs.k8s.io/yaml), so `defaultMode: 0644` stays octal and `"on"` stays a string.
 */
import { Document, isMap, isScalar, parseAllDocuments, stringify } from "yaml";

/** A problem with the input or the options; the message is complete (file, document, path). */
export class SidecarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SidecarError";
  }
}

export type KubeObject = Record<string, unknown>;

export interface Manifest {
  /** 1-based position in the stream, empty documents counted (what a reader of the file counts). */
  readonly index: number;
  readonly object: KubeObject;
  /** The document as YAML with its comments, for copying it elsewhere (the kustomize output). */
  readonly source: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string | undefined;
}

export const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** `file: document 2 (Deployment web)`: how every message names a document. */
export function describe(file: string, m: Pick<Manifest, "index" | "kind" | "name">): string {
  return `${file}: document ${m.index} (${m.kind} ${m.name})`;
}

export function parseManifests(text: string, file: string): Manifest[] {
  const out: Manifest[] = [];
  parseAllDocuments(text, { version: "1.1", uniqueKeys: true }).forEach((doc, i) => {
    const index = i + 1;
    const at = `${file}: document ${index}`;
    const error = doc.errors[0];
    // The parser's first line already names the line and column: "... at line 7, column 1:".
    if (error) throw new SidecarError(`${at}: ${error.message.split("\n")[0]!.replace(/:$/, "")}`);
    let object: unknown;
    try {
      object = doc.toJS({ maxAliasCount: 50 });
    } catch (e) {
      throw new SidecarError(`${at}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (object === null || object === undefined) return; // an empty document: `---` twice, a trailing `---`
    if (!isRecord(object)) throw new SidecarError(`${at}: not a Kubernetes object (a mapping with apiVersion, kind and metadata)`);
    for (const key of ["apiVersion", "kind"]) {
      if (typeof object[key] !== "string" || object[key] === "") throw new SidecarError(`${at}: ${key}: missing`);
    }
    const metadata = object.metadata;
    const name = isRecord(metadata) ? metadata.name : undefined;
    if (typeof name !== "string" || name === "") throw new SidecarError(`${at} (${object.kind as string}): metadata.name: missing`);
    const namespace = isRecord(metadata) && typeof metadata.namespace === "string" ? metadata.namespace : undefined;
    out.push({ index, object, source: doc.toString({ lineWidth: 0 }), kind: object.kind as string, name, namespace });
  });
  return out;
}

const OUTPUT = { version: "1.1", aliasDuplicateObjects: false, lineWidth: 0, flowCollectionPadding: false } as const;

/** One value as YAML (objects shared between places are written out, never as anchors). */
export function toYaml(value: unknown): string {
  return stringify(value, OUTPUT);
}

/** Objects as one multi-document stream. */
export function toYamlStream(objects: readonly unknown[]): string {
  return objects.map((o) => `---\n${toYaml(o)}`).join("");
}

/** A YAML document with a comment on top and one above chosen top-level keys (values.yaml). */
export function toCommentedYaml(value: Record<string, unknown>, header: string, keyComments: Readonly<Record<string, string>>): string {
  const doc = new Document(value, OUTPUT);
  doc.commentBefore = asComment(header);
  if (isMap(doc.contents)) {
    for (const pair of doc.contents.items) {
      const comment = isScalar(pair.key) ? keyComments[String(pair.key.value)] : undefined;
      if (comment !== undefined && isScalar(pair.key)) pair.key.commentBefore = asComment(comment);
    }
  }
  return doc.toString(OUTPUT);
}

/** Plain text as `# ` comment lines, for the top of a YAML file. */
export function commentLines(text: string): string {
  return text
    .split("\n")
    .map((l) => (l === "" ? "#" : `# ${l}`))
    .join("\n");
}

/** The yaml library writes each line of a comment after a `#`: a space keeps them readable. */
const asComment = (text: string) =>
  text
    .split("\n")
    .map((l) => (l === "" ? "" : ` ${l}`))
    .join("\n");
