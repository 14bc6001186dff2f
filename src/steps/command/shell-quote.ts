import { SluiceError } from '../../core/errors.js';

/**
 * Writing a `${{ }}` value into a `command`'s shell string so the shell reads it as data, whatever it holds.
 * The quoting the author wrote before the value decides how: outside quotes the value becomes one word in
 * POSIX single quotes (`'it'\''s'`); inside the author's `'...'` its quotes are escaped the same way so it stays
 * inside them; inside `"..."` the characters a shell expands there (`$`, `` ` ``, `\`, `"`) get a backslash.
 * Where no quoting can be trusted (a here-document, backticks, `${...}`) the value is refused.
 */

/** Where the text before a value leaves the shell's parser. */
type Frame = 'command' | 'subst' | 'paren' | 'single' | 'double' | 'comment' | 'backtick' | 'param';

const COMMAND_LIKE: ReadonlySet<Frame> = new Set(['command', 'subst', 'paren']);

/** `value` written for the place `before` (the shell text so far) leaves it in. */
export function quoteForShell(value: string, before: string): string {
  const { frame, heredoc } = scanShell(before);
  if (heredoc) throw unquotable('after a here-document (<<)');
  switch (frame) {
    case 'single':
      return value.replaceAll("'", `'\\''`);
    case 'double':
      return value.replace(/[$`\\"]/g, '\\$&');
    case 'comment':
      // A line break would end the comment and run the rest; a comment needs no exact value.
      return value.replace(/[\r\n]/g, ' ');
    case 'backtick':
      throw unquotable('inside backticks (use $(...) instead)');
    case 'param':
      throw unquotable('inside ${...}');
    default:
      return `'${value.replaceAll("'", `'\\''`)}'`;
  }
}

function unquotable(where: string): SluiceError {
  return new SluiceError(
    'VALIDATION_FAILED',
    `command step: a \${{ }} value in \`run\` ${where} cannot be quoted safely; pass it in \`env\` and read "$NAME", or use argv form`,
    { retryable: false },
  );
}

/** The innermost context at the end of `text`, and whether an unquoted `<<` came before. */
function scanShell(text: string): { frame: Frame; heredoc: boolean } {
  const stack: Frame[] = ['command'];
  let heredoc = false;
  for (let i = 0; i < text.length; i++) {
    const top = stack[stack.length - 1]!;
    const c = text[i]!;
    if (top === 'single') {
      if (c === "'") stack.pop();
    } else if (top === 'comment') {
      if (c === '\n') stack.pop();
    } else if (top === 'double') {
      if (c === '\\') i++;
      else if (c === '"') stack.pop();
      else i += enterExpansion(text, i, stack);
    } else {
      if (c === '\\') i++;
      else if (c === "'") stack.push('single');
      else if (c === '"') stack.push('double');
      else if (c === '`' && top === 'backtick') stack.pop();
      else if (c === ')' && (top === 'subst' || top === 'paren')) stack.pop();
      else if (c === '}' && top === 'param') stack.pop();
      else if (c === '(' && COMMAND_LIKE.has(top)) stack.push('paren');
      else if (c === '#' && COMMAND_LIKE.has(top) && (i === 0 || /[\s;&|()]/.test(text[i - 1]!))) stack.push('comment');
      else if (c === '<' && text[i + 1] === '<' && COMMAND_LIKE.has(top)) heredoc = true;
      else i += enterExpansion(text, i, stack);
    }
  }
  return { frame: stack[stack.length - 1]!, heredoc };
}

/** Pushes `$(`, `${` or a backtick starting at `i`; returns how many extra characters it took. */
function enterExpansion(text: string, i: number, stack: Frame[]): number {
  const c = text[i];
  if (c === '`') {
    stack.push('backtick');
    return 0;
  }
  if (c !== '$') return 0;
  if (text[i + 1] === '(') {
    stack.push('subst');
    return 1;
  }
  if (text[i + 1] === '{') {
    stack.push('param');
    return 1;
  }
  return 0;
}
