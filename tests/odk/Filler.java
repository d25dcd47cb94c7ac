/*
 * Filler.java: a headless stand-in for ODK Collect, for Đồng Hành's tests (mobile-schema's
 * JavaRosa round trips, the server's end-to-end OpenRosa test). It loads an XForm with JavaRosa (the engine inside Collect), walks it with FormEntryController the way
 * Collect does (non-relevant questions are skipped, each answer is checked against its
 * constraint as it is given), finalizes it like Collect's "Finalize" (FormDef.validate:
 * every relevant question again, required and constraints; then the end timestamp), and
 * writes the submission XML Collect would upload as xml_submission_file.
 *
 * Build and run against the JavaRosa bundled in ODK Validate:
 *   javac -cp ODK_Validate.jar -d OUT Filler.java
 *   java -cp ODK_Validate.jar:OUT Filler FORM.xml ANSWERS.txt [-o OUT.xml] [--media DIR]
 *        [--deprecated-id uuid:OLD] [--lang "English (en)"] [--all]
 *
 *   -o OUT.xml         where the submission goes (default: standard output)
 *   --media DIR        the form's media directory: jr://file-csv/NAME, jr://file/NAME,
 *                      jr://images/NAME ... resolve to DIR/NAME (Đồng Hành's forms need
 *                      DIR/places.csv). Default: FORM-media/ next to the form, if present.
 *                      A missing file silently becomes an empty secondary instance.
 *   --deprecated-id ID an edit of submission ID, as Collect makes it: meta/deprecatedID
 *                      = ID appended to meta, and a fresh meta/instanceID
 *   --lang NAME        the itext language for the walk log and messages (a translation's
 *                      lang attribute, e.g. "English (en)"); default: the form's default
 *   --all              also serialize non-relevant nodes (Collect's local instance.xml,
 *                      not what it submits)
 * Times (jr:preload timestamps, dateTime answers) use the JVM's time zone: pass
 * -Duser.timezone=Asia/Ho_Chi_Minh to get what a phone in Hanoi writes (+07:00).
 *
 * ANSWERS, one per line ('#' starts a comment line, blank lines are skipped):
 *   /data/visit_date=2025-07-14      absolute path (root name included) ...
 *   visit_date=2025-07-14            ... or relative to the root
 *   contacts[2]/uic=ABC123           repeat entries are 1-based, like XPath; [1] is implied
 *   contacts[1]/referrals=prep other select_multiple: space-separated choice values
 *   photos[1]/photo=slip.jpg         a photo: the file name Collect would attach
 *   /data/contacts@count=3           optional: how many entries to add to a repeat
 * A repeat entry N is added (newRepeat, as the worker would) when an answer names a path
 * inside it or N <= its @count. Answers for read-only questions are ignored; answers for
 * questions that are never reached (not relevant) are reported on standard error.
 *
 * Exit status: 0 the submission was written; 2 a value was refused (constraint, not a
 * choice, unparseable) or finalizing failed (a required question unanswered, a
 * constraint violated), with "ERROR: ..." and the form's own message on standard error;
 * 64 bad usage. The walk log goes to standard error.
 */

import org.javarosa.core.model.Constants;
import org.javarosa.core.model.FormDef;
import org.javarosa.core.model.FormIndex;
import org.javarosa.core.model.IDataReference;
import org.javarosa.core.model.SelectChoice;
import org.javarosa.core.model.SubmissionProfile;
import org.javarosa.core.model.ValidateOutcome;
import org.javarosa.core.model.CoreModelModule;
import org.javarosa.core.model.data.AnswerDataFactory;
import org.javarosa.core.model.data.IAnswerData;
import org.javarosa.core.model.data.MultipleItemsData;
import org.javarosa.core.model.data.SelectOneData;
import org.javarosa.core.model.data.StringData;
import org.javarosa.core.model.data.UncastData;
import org.javarosa.core.model.data.helper.Selection;
import org.javarosa.core.model.instance.FormInstance;
import org.javarosa.core.model.instance.InstanceInitializationFactory;
import org.javarosa.core.model.instance.TreeElement;
import org.javarosa.core.model.instance.TreeReference;
import org.javarosa.core.services.PrototypeManager;
import org.javarosa.core.util.JavaRosaCoreModule;
import org.javarosa.form.api.FormEntryController;
import org.javarosa.form.api.FormEntryModel;
import org.javarosa.form.api.FormEntryPrompt;
import org.javarosa.model.xform.XFormSerializingVisitor;
import org.javarosa.model.xform.XFormsModule;
import org.javarosa.model.xform.XPathReference;
import org.javarosa.xform.util.XFormUtils;

import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** A headless ODK Collect for tests: see the comment at the top of this file. */
public class Filler {

    static final PrintStream log = System.err;

    public static void main(String[] args) throws Exception {
        String formPath = null, answersPath = null, outPath = null, lang = null, media = null, deprecatedId = null;
        boolean all = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "-o": outPath = args[++i]; break;
                case "--lang": lang = args[++i]; break;
                case "--all": all = true; break;
                case "--media": media = args[++i]; break;
                case "--deprecated-id": deprecatedId = args[++i]; break;
                default:
                    if (formPath == null) formPath = args[i];
                    else if (answersPath == null) answersPath = args[i];
                    else {
                        log.println("unexpected argument " + args[i]);
                        System.exit(64);
                    }
            }
        }
        if (formPath == null || answersPath == null) {
            log.println("usage: Filler FORM.xml ANSWERS.txt [-o OUT.xml] [--media DIR] [--deprecated-id ID] [--lang LANG] [--all]");
            System.exit(64);
        }

        // ---- 1. static JavaRosa initialisation (same as Collect's JavaRosaInitializer) ----
        PrototypeManager.registerPrototypes(JavaRosaCoreModule.classNames);
        PrototypeManager.registerPrototypes(CoreModelModule.classNames);
        new XFormsModule().registerModule();
        // A PropertyManager is only needed for property preloads (deviceid, username, ...);
        // "uid" (instanceID) is generated by QuestionPreloader itself.

        // jr://file/x, jr://file-csv/x.csv, jr://images/x ... -> files in the form's media dir
        // (Collect: <form name>-media/). Without this, external secondary instances silently
        // become an empty "missing file" placeholder (ExternalDataInstance.build).
        if (media == null) {
            java.io.File guess = new java.io.File(formPath.replaceAll("\\.xml$", "") + "-media");
            if (guess.isDirectory()) media = guess.getPath();
        }
        if (media != null) {
            org.javarosa.core.reference.ReferenceManager.instance().addReferenceFactory(new MediaDirFactory(media));
            log.println("media dir: " + media);
        }

        // ---- 2. parse + initialise a NEW instance (runs jr:preload, calculates, odk-instance-first-load) ----
        FormDef fd;
        try (InputStream in = new FileInputStream(formPath)) {
            fd = XFormUtils.getFormFromInputStream(in);
        }
        fd.initialize(true, new InstanceInitializationFactory());

        String[] locales = fd.getLocalizer() == null ? new String[0] : fd.getLocalizer().getAvailableLocales();
        if (fd.getLocalizer() != null) {
            log.println("languages: " + String.join(" | ", locales) + "  (default: " + fd.getLocalizer().getDefaultLocale() + ")");
            if (lang != null) fd.getLocalizer().setLocale(lang);
        }

        String root = fd.getMainInstance().getRoot().getName();
        Map<String, String> answers = readAnswers(answersPath, root);
        Map<String, Integer> counts = new LinkedHashMap<>();
        for (String k : new ArrayList<>(answers.keySet())) {
            if (k.endsWith("@count")) {
                counts.put(k.substring(0, k.length() - "@count".length()), Integer.parseInt(answers.remove(k)));
            }
        }
        Set<String> used = new LinkedHashSet<>();

        // ---- 3. walk like Collect: stepToNextEvent() skips non-relevant indices ----
        FormEntryModel model = new FormEntryModel(fd);
        FormEntryController fec = new FormEntryController(model);
        int event;
        int guard = 0;
        while ((event = fec.stepToNextEvent()) != FormEntryController.EVENT_END_OF_FORM) {
            if (++guard > 100000) throw new IllegalStateException("form walk did not terminate");
            FormIndex idx = model.getFormIndex();
            TreeReference ref = idx.getReference();
            String key = canonical(ref);
            switch (event) {
                case FormEntryController.EVENT_PROMPT_NEW_REPEAT: {
                    // key is the would-be new instance, e.g. /data[1]/visit[3]
                    String repeatKey = stripLastIndex(key);
                    int n = ref.getMultiplicity(ref.size() - 1) + 1;
                    boolean wanted = n <= counts.getOrDefault(repeatKey, 0) || hasAnswerUnder(answers, key);
                    boolean allowed = fd.canCreateRepeat(ref, idx); // false for jr:count / jr:noAddRemove repeats
                    if (wanted && allowed) {
                        log.println("+ newRepeat " + display(key));
                        fec.newRepeat();      // index now points at the new instance (EVENT_REPEAT)
                    } else if (wanted) {
                        log.println("! cannot add " + display(key) + " (jr:count/jr:noAddRemove)");
                    }
                    break; // next stepToNextEvent descends into the new instance or moves past the repeat
                }
                case FormEntryController.EVENT_REPEAT: {
                    // pyxform-generated forms ship one pre-created instance of every repeat;
                    // honour an explicit smaller @count by deleting it (Collect's "delete repeat").
                    String repeatKey = stripLastIndex(key);
                    int n = ref.getMultiplicity(ref.size() - 1) + 1;
                    Integer want = counts.get(repeatKey);
                    org.javarosa.core.model.GroupDef g = (org.javarosa.core.model.GroupDef) fd.getChild(idx);
                    if (want != null && n > want && !g.noAddRemove) {
                        log.println("- deleteRepeat " + display(key));
                        fec.jumpToIndex(fec.deleteRepeat());
                        // deleteRepeat returns the index *before* the deleted instance; keep stepping from there
                        break;
                    }
                }
                // fall through
                case FormEntryController.EVENT_GROUP:
                    log.println("> " + (event == FormEntryController.EVENT_REPEAT ? "repeat " : "group  ") + display(key)
                            + "  \"" + model.getCaptionPrompt().getLongText() + "\"");
                    break;
                case FormEntryController.EVENT_QUESTION: {
                    FormEntryPrompt p = model.getQuestionPrompt();
                    String value = answers.get(key);
                    if (value == null) {
                        log.println("  " + display(key) + "  \"" + p.getLongText() + "\" = (no answer)");
                        break;
                    }
                    used.add(key);
                    if (p.isReadOnly()) {
                        log.println("  " + display(key) + " is read-only; ignoring answer");
                        break;
                    }
                    IAnswerData data = toAnswer(p, value);
                    int res = fec.answerQuestion(data, true);
                    if (res == FormEntryController.ANSWER_CONSTRAINT_VIOLATED) {
                        fail("constraint violated at " + display(key) + " value '" + value + "': " + p.getConstraintText(data));
                    } else if (res == FormEntryController.ANSWER_REQUIRED_BUT_EMPTY) {
                        fail("required but empty: " + display(key));
                    }
                    log.println("  " + display(key) + "  \"" + p.getLongText() + "\" = " + value
                            + (p.getControlType() == Constants.CONTROL_SELECT_ONE || p.getControlType() == Constants.CONTROL_SELECT_MULTI
                               ? "  [" + p.getAnswerText() + "]" : ""));
                    break;
                }
                default:
                    break;
            }
        }

        // ---- 4. report answers that were never asked (non-relevant or unknown paths) ----
        for (String k : answers.keySet()) {
            if (used.contains(k)) continue;
            TreeElement el = fd.getMainInstance().resolveReference(parseCanonical(k));
            String why = el == null ? "no such node" : (!el.isRelevant() ? "not relevant -> skipped" : "not reached");
            log.println("! unused answer " + display(k) + " (" + why + ")");
        }

        // ---- 5. validate (required questions, constraints) and finalize like Collect on "Finalize" ----
        ValidateOutcome vo = fd.validate();
        if (vo != null && vo.outcome != FormEntryController.ANSWER_OK) { // null = all OK
            FormEntryPrompt failed = model.getQuestionPrompt(vo.failedPrompt);
            boolean required = vo.outcome == FormEntryController.ANSWER_REQUIRED_BUT_EMPTY;
            String message = required ? requiredMessage(fd, failed) : failed.getConstraintText();
            fail((required ? "required question unanswered: " : "constraint violated: ")
                    + display(canonical(vo.failedPrompt.getReference()))
                    + (message == null ? "" : ": " + message));
        }
        if (deprecatedId != null) {
            // Mimic Collect's EditedFormFinalizationProcessor: <meta><deprecatedID> = id of the
            // submission being replaced; <instanceID> = a fresh uuid (already fresh here).
            final String dep = deprecatedId;
            fec.addPostProcessor(m -> {
                TreeElement meta = m.getForm().getMainInstance().getRoot().getFirstChild("meta");
                TreeElement d = new TreeElement("deprecatedID");
                meta.addChild(d);
                d.setAnswer(new StringData(dep));
            });
        }
        fec.finalizeFormEntry(); // postProcessInstance() (end timestamps etc.) + post processors

        // ---- 6. serialize: Collect's getSubmissionXml() = new XFormSerializingVisitor() (respects relevance) ----
        SubmissionProfile sp = fd.getSubmissionProfile();
        IDataReference subRef = (sp == null || sp.getRef() == null) ? new XPathReference("/") : sp.getRef();
        FormInstance inst = fd.getInstance();
        byte[] xml = new XFormSerializingVisitor(!all).serializeInstance(inst, subRef);
        try (OutputStream out = outPath == null ? System.out : new FileOutputStream(outPath)) {
            out.write(xml);
            out.write('\n');
        }
    }

    // ----------------------------------------------------------------------------------

    /** Resolves jr://file/NAME etc. to MEDIA_DIR/NAME (order matters: file-csv before file). */
    static class MediaDirFactory extends org.javarosa.core.reference.PrefixedRootFactory {
        final String dir;
        MediaDirFactory(String dir) {
            super(new String[]{"jr://file-csv/", "jr://file/", "jr://images/", "jr://audio/", "jr://video/"});
            this.dir = dir;
        }
        @Override
        protected org.javarosa.core.reference.Reference factory(String terminal, String uri) {
            final java.io.File f = new java.io.File(dir, terminal);
            return new org.javarosa.core.reference.Reference() {
                public boolean doesBinaryExist() { return f.exists(); }
                public InputStream getStream() throws java.io.IOException { return new FileInputStream(f); }
                public String getURI() { return uri; }
                public String getLocalURI() { return f.getAbsolutePath(); }
                public boolean isReadOnly() { return true; }
                public OutputStream getOutputStream() { throw new UnsupportedOperationException(); }
                public void remove() { throw new UnsupportedOperationException(); }
                public org.javarosa.core.reference.Reference[] probeAlternativeReferences() { return new org.javarosa.core.reference.Reference[0]; }
            };
        }
    }

    static IAnswerData toAnswer(FormEntryPrompt p, String value) {
        int ct = p.getControlType();
        if (ct == Constants.CONTROL_SELECT_ONE) {
            return new SelectOneData(findChoice(p, value.trim()).selection());
        }
        if (ct == Constants.CONTROL_SELECT_MULTI) {
            List<Selection> sel = new ArrayList<>();
            for (String v : value.trim().split("\\s+")) if (!v.isEmpty()) sel.add(findChoice(p, v).selection());
            return new MultipleItemsData(sel);
        }
        if (p.getDataType() == Constants.DATATYPE_BINARY) {
            // Collect's image/audio/video widgets answer with just the file name (StringData)
            return new StringData(value.trim());
        }
        IAnswerData template = AnswerDataFactory.template(ct, p.getDataType());
        if (template instanceof UncastData) return new StringData(value);
        try {
            return template.cast(new UncastData(value.trim()));
        } catch (RuntimeException e) {
            fail("cannot parse '" + value + "' as " + template.getClass().getSimpleName() + ": " + e);
            return null;
        }
    }

    /** The jr:requiredMsg of a question, resolved like Collect does (itext or plain text). */
    static String requiredMessage(FormDef fd, FormEntryPrompt p) {
        for (TreeElement attr : p.getBindAttributes()) {
            if (!"requiredMsg".equals(attr.getName())) continue;
            String v = attr.getAttributeValue();
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("jr:itext\\('([^']*)'\\)").matcher(v);
            return m.matches() && fd.getLocalizer() != null ? fd.getLocalizer().getText(m.group(1)) : v;
        }
        return null;
    }

    static SelectChoice findChoice(FormEntryPrompt p, String value) {
        for (SelectChoice c : p.getSelectChoices()) if (value.equals(c.getValue())) return c;
        List<String> valid = new ArrayList<>();
        for (SelectChoice c : p.getSelectChoices()) valid.add(c.getValue());
        fail("'" + value + "' is not a choice of " + p.getIndex().getReference() + "; valid: " + valid);
        return null;
    }

    /** /data[1]/visit[2]/v_date[1] -- every step carries a 1-based index. */
    static String canonical(TreeReference ref) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < ref.size(); i++) {
            int m = ref.getMultiplicity(i);
            sb.append('/').append(ref.getName(i)).append('[').append(m < 0 ? 1 : m + 1).append(']');
        }
        return sb.toString();
    }

    static TreeReference parseCanonical(String key) {
        TreeReference r = TreeReference.rootRef();
        for (String step : key.substring(1).split("/")) {
            int b = step.indexOf('[');
            r.add(step.substring(0, b), Integer.parseInt(step.substring(b + 1, step.length() - 1)) - 1);
        }
        return r;
    }

    static String normalize(String path, String root) {
        String p = path.trim();
        if (!p.startsWith("/")) p = "/" + root + "/" + p;
        String suffix = "";
        if (p.endsWith("@count")) { suffix = "@count"; p = p.substring(0, p.length() - suffix.length()); }
        StringBuilder sb = new StringBuilder();
        String[] steps = p.substring(1).split("/");
        for (int i = 0; i < steps.length; i++) {
            String s = steps[i];
            // a @count key names the repeat itself: leave its last step unindexed
            boolean last = i == steps.length - 1;
            sb.append('/').append(s);
            if (!s.endsWith("]") && !(last && !suffix.isEmpty())) sb.append("[1]");
        }
        return sb + suffix;
    }

    static String stripLastIndex(String key) {
        return key.substring(0, key.lastIndexOf('['));
    }

    static boolean hasAnswerUnder(Map<String, String> answers, String instanceKey) {
        String prefix = instanceKey + "/";
        for (String k : answers.keySet()) if (k.startsWith(prefix)) return true;
        return false;
    }

    /** Pretty form of a canonical key: drop [1] on non-repeat steps is not knowable here, so drop all [1]. */
    static String display(String key) {
        return key.replace("[1]", "");
    }

    static Map<String, String> readAnswers(String path, String root) throws Exception {
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : Files.readAllLines(Paths.get(path), StandardCharsets.UTF_8)) {
            if (line.trim().isEmpty() || line.trim().startsWith("#")) continue;
            int eq = line.indexOf('=');
            if (eq < 0) throw new IllegalArgumentException("bad line: " + line);
            m.put(normalize(line.substring(0, eq), root), line.substring(eq + 1));
        }
        return m;
    }

    static void fail(String msg) {
        log.println("ERROR: " + msg);
        System.exit(2);
    }
}
